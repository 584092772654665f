//! The admin page's pictures: the last 30 days as stacked bars (delivered, deferred,
//! bounced, failed per day) and each receiving provider's share of the mail, from the
//! daily tallies (`domain::tally`).
//!
//! A chart is built here as plain geometry (rectangles and text, with numbers already
//! scaled) and drawn as inline SVG by one shared template partial (`chart.hbs`), so
//! the page needs no JavaScript and every text still goes through the templates'
//! escaping. Each chart is an image with a name; the numbers themselves are in the
//! table the page puts beside it, which is what a screen reader reads.

use serde::Serialize;

use super::sentence::Lang;
use crate::domain::provider;
use crate::domain::tally::{Counts, DayOutcome, Window};

/// The outcomes' colours, in [`DayOutcome::ALL`]'s order: blue, amber, vermilion and
/// near-black, told apart also by lightness (colour-blind readers) and at least 3:1
/// against white (WCAG 1.4.11).
const COLOURS: [&str; 4] = ["#0072b2", "#b86e00", "#cc3311", "#333333"];

/// An outcome's name, as the legend and the tables say it.
pub fn outcome_name(lang: Lang, o: DayOutcome) -> &'static str {
    match (lang, o) {
        (Lang::Ja, DayOutcome::Delivered) => "配信済み",
        (Lang::Ja, DayOutcome::Deferred) => "遅延",
        (Lang::Ja, DayOutcome::Bounced) => "不達",
        (Lang::Ja, DayOutcome::Failed) => "送信失敗",
        (Lang::En, o) => o.as_str(),
    }
}

/// One rectangle.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Bar {
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
    pub fill: &'static str,
}

/// One text.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Text {
    pub x: f64,
    pub y: f64,
    pub text: String,
    /// `start`, `middle` or `end`.
    pub anchor: &'static str,
}

/// A chart as the `chart` partial draws it.
#[derive(Debug, Clone, Serialize)]
pub struct Chart {
    /// The element id; its `<title>` is `{id}-title`.
    pub id: &'static str,
    /// The image's name, for screen readers and as a tooltip.
    pub title: String,
    pub width: f64,
    pub height: f64,
    pub bars: Vec<Bar>,
    pub texts: Vec<Text>,
    /// Thin lines (axis and grid), as bars one unit high.
    pub rules: Vec<Bar>,
}

fn round(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// The smallest of 1, 2, 5 × 10ⁿ at or above `max` (at least 1): the scale's top, so
/// the axis reads in round numbers.
fn scale_top(max: u64) -> u64 {
    let mut step = 1;
    loop {
        for m in [1, 2, 5] {
            if step * m >= max {
                return step * m;
            }
        }
        step *= 10;
    }
}

/// The legend across the top of a chart, from `x`.
fn legend(lang: Lang, x: f64, y: f64, bars: &mut Vec<Bar>, texts: &mut Vec<Text>) {
    let mut at = x;
    for (i, o) in DayOutcome::ALL.into_iter().enumerate() {
        bars.push(Bar {
            x: round(at),
            y: y - 10.0,
            w: 10.0,
            h: 10.0,
            fill: COLOURS[i],
        });
        let name = outcome_name(lang, o);
        texts.push(Text {
            x: round(at + 14.0),
            y,
            text: name.to_string(),
            anchor: "start",
        });
        // Japanese glyphs are about twice as wide as Latin ones.
        let per_char = if name.is_ascii() { 7.0 } else { 13.0 };
        at += 14.0 + per_char * name.chars().count() as f64 + 16.0;
    }
}

/// Stacked bars, one per day, oldest on the left; the days are `MM/DD` under every
/// seventh bar counted back from the last (today's) one.
pub fn days_chart(lang: Lang, days: &[(String, Counts)], zone: &str) -> Chart {
    const W: f64 = 720.0;
    const H: f64 = 260.0;
    const LEFT: f64 = 44.0;
    const RIGHT: f64 = 8.0;
    const TOP: f64 = 34.0;
    const BOTTOM: f64 = 28.0;
    let plot_h = H - TOP - BOTTOM;
    let base = H - BOTTOM;
    let max = days
        .iter()
        .map(|(_, c)| c.iter().sum::<u64>())
        .max()
        .unwrap_or(0);
    let top = scale_top(max);
    let mut bars = Vec::new();
    let mut texts = Vec::new();
    let mut rules = Vec::new();
    legend(lang, LEFT, 14.0, &mut bars, &mut texts);
    let ticks = if top >= 2 {
        vec![0, top / 2, top]
    } else {
        vec![0, top]
    };
    for tick in ticks {
        let y = round(base - plot_h * tick as f64 / top as f64);
        texts.push(Text {
            x: LEFT - 6.0,
            y: y + 4.0,
            text: tick.to_string(),
            anchor: "end",
        });
        rules.push(Bar {
            x: LEFT,
            y,
            w: W - LEFT - RIGHT,
            h: 1.0,
            fill: if tick == 0 { "#555555" } else { "#dddddd" },
        });
    }
    let slot = (W - LEFT - RIGHT) / days.len().max(1) as f64;
    let bar_w = round(slot * 0.7);
    for (i, (day, counts)) in days.iter().enumerate() {
        let x = LEFT + slot * i as f64 + (slot - bar_w) / 2.0;
        let mut y = base;
        for (k, n) in counts.iter().enumerate() {
            if *n == 0 {
                continue;
            }
            let h = plot_h * *n as f64 / top as f64;
            y -= h;
            bars.push(Bar {
                x: round(x),
                y: round(y),
                w: bar_w,
                h: round(h),
                fill: COLOURS[k],
            });
        }
        if (days.len() - 1 - i).is_multiple_of(7) {
            texts.push(Text {
                x: round(x + bar_w / 2.0),
                y: H - 8.0,
                text: day.get(5..).unwrap_or(day).replace('-', "/"),
                anchor: "middle",
            });
        }
    }
    let (first, last) = (
        days.first().map_or("", |d| d.0.as_str()),
        days.last().map_or("", |d| d.0.as_str()),
    );
    let title = match lang {
        Lang::Ja => format!("日別の配信結果（{first}〜{last}、{zone}）。数値は次の表にあります"),
        Lang::En => format!(
            "Outcomes per day, {first} to {last} ({zone}); the numbers are in the table that follows"
        ),
    };
    Chart {
        id: "days-chart",
        title,
        width: W,
        height: H,
        bars,
        texts,
        rules,
    }
}

/// One provider's row of the share table.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Share {
    pub id: String,
    pub name: String,
    pub counts: Counts,
    pub total: u64,
    /// The share of all mail in the window, as the page prints it (`42.5%`).
    pub percent: String,
}

/// Each provider's counts over the window and its share of the whole, in the table's
/// order with "other" last.
pub fn shares(lang: Lang, window: &Window) -> Vec<Share> {
    let all: u64 = window.providers.iter().flat_map(|(_, c)| c.iter()).sum();
    window
        .providers
        .iter()
        .map(|(id, counts)| {
            let total = counts.iter().sum();
            let percent = if all == 0 {
                "0%".into()
            } else {
                format!("{:.1}%", total as f64 * 100.0 / all as f64)
            };
            Share {
                id: id.clone(),
                name: provider::name(id, lang == Lang::Ja),
                counts: *counts,
                total,
                percent,
            }
        })
        .collect()
}

/// A horizontal bar per provider, as long as its share of all mail and split by
/// outcome, with its name on the left and its share on the right.
pub fn providers_chart(lang: Lang, shares: &[Share]) -> Chart {
    const W: f64 = 720.0;
    const LEFT: f64 = 176.0;
    const RIGHT: f64 = 120.0;
    const TOP: f64 = 34.0;
    const ROW: f64 = 26.0;
    let height = TOP + ROW * shares.len() as f64 + 8.0;
    let all: u64 = shares.iter().map(|s| s.total).sum();
    let plot_w = W - LEFT - RIGHT;
    let mut bars = Vec::new();
    let mut texts = Vec::new();
    let mut rules = Vec::new();
    legend(lang, LEFT, 14.0, &mut bars, &mut texts);
    rules.push(Bar {
        x: LEFT,
        y: TOP - 4.0,
        w: 1.0,
        h: ROW * shares.len() as f64 + 4.0,
        fill: "#555555",
    });
    for (i, s) in shares.iter().enumerate() {
        let y = TOP + ROW * i as f64;
        texts.push(Text {
            x: LEFT - 8.0,
            y: y + 14.0,
            text: s.name.clone(),
            anchor: "end",
        });
        let mut x = LEFT;
        for (k, n) in s.counts.iter().enumerate() {
            if *n == 0 || all == 0 {
                continue;
            }
            let w = plot_w * *n as f64 / all as f64;
            bars.push(Bar {
                x: round(x),
                y: y + 2.0,
                w: round(w),
                h: 16.0,
                fill: COLOURS[k],
            });
            x += w;
        }
        texts.push(Text {
            x: round(x + 6.0),
            y: y + 14.0,
            text: match lang {
                Lang::Ja => format!("{}（{}通）", s.percent, s.total),
                Lang::En => format!("{} ({})", s.percent, s.total),
            },
            anchor: "start",
        });
    }
    let title = match lang {
        Lang::Ja => "受信側の事業者ごとの割合。数値は次の表にあります".to_string(),
        Lang::En => {
            "Share of the mail per receiving provider; the numbers are in the table that follows"
                .to_string()
        }
    };
    Chart {
        id: "providers-chart",
        title,
        width: W,
        height: round(height),
        bars,
        texts,
        rules,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(d: &str, c: Counts) -> (String, Counts) {
        (d.to_string(), c)
    }

    /// The bars of a chart without its legend's swatches.
    fn data_bars(c: &Chart) -> Vec<&Bar> {
        c.bars.iter().filter(|b| b.y > 20.0).collect()
    }

    #[test]
    fn the_scale_tops_at_a_round_number() {
        assert_eq!(scale_top(0), 1);
        assert_eq!(scale_top(3), 5);
        assert_eq!(scale_top(11), 20);
        assert_eq!(scale_top(50), 50);
        assert_eq!(scale_top(501), 1000);
    }

    #[test]
    fn day_bars_are_stacked_in_proportion_to_their_counts() {
        let days = vec![
            day("2026-12-06", [10, 0, 0, 0]),
            day("2026-12-07", [5, 2, 3, 0]),
        ];
        let c = days_chart(Lang::En, &days, "Asia/Tokyo");
        let bars = data_bars(&c);
        assert_eq!(bars.len(), 4, "{bars:?}");
        // Top of the scale is 10: the first day fills the plot, 198 units high.
        assert_eq!(bars[0].h, 198.0);
        assert_eq!(bars[0].fill, COLOURS[0]);
        let second: Vec<f64> = bars[1..].iter().map(|b| b.h).collect();
        assert_eq!(second, [99.0, 39.6, 59.4]);
        // Stacked: each segment sits on the one below it, from the base line up.
        assert_eq!(bars[1].y + bars[1].h, 232.0);
        assert_eq!(round(bars[2].y + bars[2].h), bars[1].y);
        assert_eq!(round(bars[3].y + bars[3].h), bars[2].y);
        assert!(bars[1].x > bars[0].x);
        let texts: Vec<&str> = c.texts.iter().map(|t| t.text.as_str()).collect();
        for want in [
            "delivered",
            "deferred",
            "bounced",
            "failed",
            "0",
            "5",
            "10",
            "12/07",
        ] {
            assert!(texts.contains(&want), "{want} in {texts:?}");
        }
        assert!(c.title.contains("2026-12-06 to 2026-12-07 (Asia/Tokyo)"));
    }

    #[test]
    fn an_empty_month_draws_no_bars_but_keeps_its_axis() {
        let days: Vec<_> = (1..=30)
            .map(|d| day(&format!("2026-11-{d:02}"), [0; 4]))
            .collect();
        let c = days_chart(Lang::Ja, &days, "Asia/Tokyo");
        assert!(data_bars(&c).is_empty());
        assert_eq!(c.rules.len(), 2, "a base line and one gridline");
        let labels: Vec<&str> = c.texts.iter().map(|t| t.text.as_str()).collect();
        assert!(
            labels.contains(&"11/30") && labels.contains(&"11/23"),
            "{labels:?}"
        );
        assert!(labels.contains(&"配信済み"));
    }

    #[test]
    fn provider_bars_are_as_long_as_their_share_and_say_it() {
        let window = Window {
            days: vec![],
            providers: vec![
                ("docomo".into(), [3, 0, 1, 0]),
                ("gmail".into(), [4, 0, 0, 0]),
                ("other".into(), [0; 4]),
            ],
        };
        let s = shares(Lang::Ja, &window);
        assert_eq!(s[0].name, "ドコモ");
        assert_eq!(s[0].percent, "50.0%");
        assert_eq!(s[2].name, "その他");
        assert_eq!(s[2].percent, "0.0%");
        let c = providers_chart(Lang::Ja, &s);
        let bars = data_bars(&c);
        // 8 mails over 424 units: 53 a mail.
        let widths: Vec<f64> = bars.iter().map(|b| b.w).collect();
        assert_eq!(widths, [159.0, 53.0, 212.0]);
        assert_eq!(bars[1].x, round(bars[0].x + bars[0].w));
        assert!(c.texts.iter().any(|t| t.text == "50.0%（4通）"));
        assert!(c.texts.iter().any(|t| t.text == "Gmail"));
    }
}
