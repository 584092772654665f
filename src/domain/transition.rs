//! The state machine of a flow, as pure functions of a record and `now`: no I/O, no
//! clock, so every rule (lifetimes, tries, the daily cap, who may go on) is tested with
//! values alone. A stored flow changes only by a named [`Transition`], which the store
//! applies atomically (`Store::transition_flow`) and which says what the change tells
//! the application ([`told`]). It sits in `domain`, below the store, so that the store's
//! flow intent can name the transitions rather than take a caller's closure.

use crate::domain::{CodeRecord, EventData, EventType, FlowNote, FlowRecord, FlowState};
use crate::secrets as secret;

/// Tries per code; the next try is refused even when right.
pub const CODE_TRIES: u32 = 5;
/// Wrong or refused tries within a day after which the flow locks.
pub const DAILY_FAILURE_CAP: usize = 20;
const DAY_MS: u64 = 86_400_000;
/// At most this many notes of one kind (a scanner may fetch a link many times).
const MAX_NOTES_OF_A_KIND: usize = 20;
/// Link visits kept: the first few show a scanner's fetch and the person's; more only
/// make every page read of the flow slower.
const MAX_VISIT_NOTES: usize = 5;

/// The state as of `now`: an open flow whose link has run out is expired.
pub fn effective_state(flow: &FlowRecord, now: u64) -> FlowState {
    if flow.state.is_open() && now >= flow.expires_ms {
        FlowState::Expired
    } else {
        flow.state
    }
}

/// Appends a timeline note (bounded per kind).
pub fn note(flow: &mut FlowRecord, now: u64, what: &str, detail: Option<String>) {
    if notes_full(flow, what) {
        return;
    }
    flow.notes.push(FlowNote {
        at_ms: now,
        what: what.to_string(),
        detail,
    });
}

/// True when the flow already keeps as many notes of this kind as it ever will.
pub fn notes_full(flow: &FlowRecord, what: &str) -> bool {
    let cap = if what == "link_visited" {
        MAX_VISIT_NOTES
    } else {
        MAX_NOTES_OF_A_KIND
    };
    flow.notes.iter().filter(|n| n.what == what).count() >= cap
}

/// Why the button did not mail a code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ButtonRefusal {
    /// The flow cannot go on (expired, used, superseded, …).
    Closed(FlowState),
    /// A code was mailed less than the resend interval ago.
    TooSoon { wait_s: u64 },
}

/// What a new code needs: its digest, the new binding's digest, the digest of the
/// binding the asking browser already holds (if any) and timings.
#[derive(Debug, Clone)]
pub struct NewCode {
    pub hash: String,
    pub binding_hash: String,
    pub asked_by: Option<String>,
    pub lifetime_ms: u64,
    pub resend_interval_ms: u64,
}

/// The button: replaces any earlier code with a new one bound to the asking browser.
/// The resend interval binds the browser that asked for the current code only: a link
/// scanner that presses buttons never makes the person wait (issue 15). A code never
/// outlives its link: it expires at the earlier of the two.
pub fn press_button(flow: &mut FlowRecord, now: u64, new: NewCode) -> Result<(), ButtonRefusal> {
    let state = effective_state(flow, now);
    if !state.is_open() {
        return Err(ButtonRefusal::Closed(state));
    }
    if let Some(c) = &flow.code
        && new
            .asked_by
            .as_deref()
            .is_some_and(|b| secret::same(b, &c.binding_hash))
    {
        let next = c.issued_ms + new.resend_interval_ms;
        if now < next {
            return Err(ButtonRefusal::TooSoon {
                wait_s: (next - now).div_ceil(1000),
            });
        }
    }
    flow.code = Some(CodeRecord {
        hash: new.hash,
        binding_hash: new.binding_hash,
        issued_ms: now,
        expires_ms: (now + new.lifetime_ms).min(flow.expires_ms),
        tries: 0,
        used: false,
    });
    flow.state = FlowState::Opened;
    note(flow, now, "code_requested", None);
    Ok(())
}

/// The answer to a code try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeOutcome {
    /// Right: the password form may follow, in this browser.
    Verified,
    /// Wrong; this many tries are left on the code.
    Wrong { tries_left: u32 },
    /// The code's tries are used up: a new code is needed (even a right answer fails).
    TriesUsedUp,
    /// The code's lifetime ended.
    CodeExpired,
    /// The code was already accepted once.
    CodeUsed,
    /// No code was asked for yet.
    NoCode,
    /// This browser did not ask for the code.
    WrongBrowser,
    /// Too many failures today: the flow is locked.
    Locked,
    /// The flow cannot go on.
    Closed(FlowState),
}

/// Counts one try of a code and decides it. `typed_hash` is the stored form of what was
/// typed; `binding_hash` that of the browser's binding cookie, if it sent one.
pub fn submit_code(
    flow: &mut FlowRecord,
    now: u64,
    typed_hash: &str,
    binding_hash: Option<&str>,
) -> CodeOutcome {
    let state = effective_state(flow, now);
    if state == FlowState::Locked {
        return CodeOutcome::Locked;
    }
    if !state.is_open() {
        return CodeOutcome::Closed(state);
    }
    let Some(code) = flow.code.as_mut() else {
        return CodeOutcome::NoCode;
    };
    if !binding_hash.is_some_and(|b| secret::same(b, &code.binding_hash)) {
        return CodeOutcome::WrongBrowser;
    }
    if code.used {
        return CodeOutcome::CodeUsed;
    }
    if now >= code.expires_ms {
        return CodeOutcome::CodeExpired;
    }
    let outcome = if code.tries >= CODE_TRIES {
        CodeOutcome::TriesUsedUp
    } else {
        code.tries += 1;
        if secret::same(typed_hash, &code.hash) {
            code.used = true;
            flow.state = FlowState::CodeVerified;
            note(flow, now, "code_verified", None);
            return CodeOutcome::Verified;
        }
        CodeOutcome::Wrong {
            tries_left: CODE_TRIES - code.tries,
        }
    };
    flow.failures_ms.retain(|t| now.saturating_sub(*t) < DAY_MS);
    flow.failures_ms.push(now);
    note(flow, now, "code_wrong", None);
    if flow.failures_ms.len() >= DAILY_FAILURE_CAP {
        flow.state = FlowState::Locked;
        note(
            flow,
            now,
            "locked",
            Some(format!("{DAILY_FAILURE_CAP} wrong codes within a day")),
        );
        return CodeOutcome::Locked;
    }
    outcome
}

/// True when this browser may see the password form: the code was verified in it.
pub fn may_set_password(flow: &FlowRecord, now: u64, binding_hash: Option<&str>) -> bool {
    effective_state(flow, now) == FlowState::CodeVerified
        && flow.code.as_ref().is_some_and(|c| {
            c.used && binding_hash.is_some_and(|b| secret::same(b, &c.binding_hash))
        })
}

/// Sets the flow completed (the link is used up). False, changing nothing, when this
/// browser may not set the password (any more).
pub fn complete(flow: &mut FlowRecord, now: u64, binding_hash: Option<&str>) -> bool {
    if !may_set_password(flow, now, binding_hash) {
        return false;
    }
    flow.state = FlowState::Completed;
    flow.completed_ms = Some(now);
    flow.code = None;
    note(flow, now, "completed", None);
    true
}

/// Marks an open flow superseded by `by`. False when it was already final.
pub fn supersede(flow: &mut FlowRecord, now: u64, by: &str) -> bool {
    if !flow.state.is_open() {
        return false;
    }
    flow.state = FlowState::Superseded;
    flow.superseded_by = Some(by.to_string());
    note(flow, now, "superseded", None);
    true
}

/// Records that an open flow's link lifetime ended (until then the state only reads
/// as expired, see [`effective_state`]). False when it is final or still running.
pub fn expire(flow: &mut FlowRecord, now: u64) -> bool {
    if !flow.state.is_open() || now < flow.expires_ms {
        return false;
    }
    flow.state = FlowState::Expired;
    note(flow, now, "expired", None);
    true
}

/// Marks an open flow undeliverable. False when it was already final.
pub fn mark_undeliverable(flow: &mut FlowRecord, now: u64, reason: &str) -> bool {
    if !flow.state.is_open() {
        return false;
    }
    flow.state = FlowState::Undeliverable;
    flow.undeliverable_reason = Some(reason.to_string());
    note(flow, now, "undeliverable", Some(reason.to_string()));
    true
}

/// A server accepted one of the flow's messages: the link mail moves the flow to
/// `mailed`, a code mail to `code_sent`.
pub fn message_delivered(flow: &mut FlowRecord, now: u64, template: &str) {
    match (template, flow.state) {
        ("invite" | "reset", FlowState::Issued) => {
            flow.state = FlowState::Mailed;
            note(flow, now, "mailed", None);
        }
        // The link was used before the delivery was recorded (a fast reader, or a
        // scanner that presses buttons): the flow has moved on, and that its mail
        // arrived is still news for the application, once.
        ("invite" | "reset", FlowState::Opened | FlowState::CodeSent | FlowState::Completed)
            if !was_mailed(flow) =>
        {
            note(flow, now, "mailed", None)
        }
        ("code", FlowState::Opened) => {
            flow.state = FlowState::CodeSent;
            note(flow, now, "code_sent", None);
        }
        _ => {}
    }
}

/// Whether a delivery of the flow's link mail was recorded.
pub fn was_mailed(flow: &FlowRecord) -> bool {
    flow.notes.iter().any(|n| n.what == "mailed")
}

/// What [`told`] compares a changed flow with: its state, and whether its link mail was
/// known to be delivered, before the change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Before {
    pub state: FlowState,
    pub mailed: bool,
}

impl Before {
    pub fn of(flow: &FlowRecord) -> Before {
        Before {
            state: flow.state,
            mailed: was_mailed(flow),
        }
    }
}

/// A named change to a stored flow: the only ways a flow changes once it is stored.
#[derive(Debug, Clone)]
pub enum Transition {
    /// One of the flow's mails was queued: its id joins the flow's messages.
    AddMessage { message_id: String },
    /// A receiving server accepted one of the flow's mails ([`message_delivered`]).
    MessageDelivered { template: String },
    /// One of the flow's mails will not arrive ([`mark_undeliverable`]).
    MarkUndeliverable { reason: String },
    /// A newer flow of the address took over ([`supersede`]).
    Supersede { by: String },
    /// The link's lifetime ended ([`expire`]).
    Expire,
    /// The link was fetched, by a person or a scanner (`method`: the HTTP method).
    NoteVisit { method: String },
    /// The button: a new code ([`press_button`]).
    PressButton(NewCode),
    /// A code typed ([`submit_code`]).
    SubmitCode {
        typed_hash: String,
        binding_hash: Option<String>,
    },
    /// The password was set ([`complete`]).
    Complete { binding_hash: Option<String> },
}

/// What a [`Transition`] did; each transition answers with its own kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Whether the flow changed (every transition but the button and a code try).
    Changed(bool),
    /// The button's answer.
    Button(Result<(), ButtonRefusal>),
    /// A code try's answer.
    Code(CodeOutcome),
}

impl Outcome {
    /// True when the transition changed the flow's state or data as asked.
    pub fn changed(self) -> bool {
        match self {
            Outcome::Changed(changed) => changed,
            Outcome::Button(result) => result.is_ok(),
            Outcome::Code(outcome) => outcome == CodeOutcome::Verified,
        }
    }
}

impl Transition {
    /// Applies the transition to `flow` as of `now`.
    pub fn apply(&self, flow: &mut FlowRecord, now: u64) -> Outcome {
        match self {
            Transition::AddMessage { message_id } => {
                flow.message_ids.push(message_id.clone());
                Outcome::Changed(true)
            }
            Transition::MessageDelivered { template } => {
                let before = Before::of(flow);
                message_delivered(flow, now, template);
                Outcome::Changed(Before::of(flow) != before)
            }
            Transition::MarkUndeliverable { reason } => {
                Outcome::Changed(mark_undeliverable(flow, now, reason))
            }
            Transition::Supersede { by } => Outcome::Changed(supersede(flow, now, by)),
            Transition::Expire => Outcome::Changed(expire(flow, now)),
            Transition::NoteVisit { method } => {
                let full = notes_full(flow, "link_visited");
                note(flow, now, "link_visited", Some(method.clone()));
                Outcome::Changed(!full)
            }
            Transition::PressButton(new) => Outcome::Button(press_button(flow, now, new.clone())),
            Transition::SubmitCode {
                typed_hash,
                binding_hash,
            } => Outcome::Code(submit_code(flow, now, typed_hash, binding_hash.as_deref())),
            Transition::Complete { binding_hash } => {
                Outcome::Changed(complete(flow, now, binding_hash.as_deref()))
            }
        }
    }
}

/// What a flow's move from `before` to its present state tells the application: the
/// event (with the reason in mailgate's words) and whether the flow just completed (so
/// a counter counts completions as they happen). `opened` is told once, at the first
/// press of the button (a person, not a link scanner: scanners fetch links but do not
/// press buttons), not at each new code. `mailed` is told once too, late when the link
/// was used before its delivery was recorded.
pub fn told(before: Before, flow: &FlowRecord) -> (Option<(EventType, EventData)>, bool) {
    let before_state = before.state;
    let kind = match flow.state {
        after if after == before_state => {
            (!before.mailed && was_mailed(flow)).then_some(EventType::FlowMailed)
        }
        FlowState::Mailed => Some(EventType::FlowMailed),
        FlowState::Opened if matches!(before_state, FlowState::Issued | FlowState::Mailed) => {
            Some(EventType::FlowOpened)
        }
        FlowState::Completed => Some(EventType::FlowCompleted),
        FlowState::Undeliverable => Some(EventType::FlowUndeliverable),
        FlowState::Expired => Some(EventType::FlowExpired),
        FlowState::Locked => Some(EventType::FlowLocked),
        FlowState::Superseded => Some(EventType::FlowSuperseded),
        _ => None,
    };
    let event = kind.map(|kind| {
        let data = EventData {
            reason: match flow.state {
                FlowState::Undeliverable => flow.undeliverable_reason.clone(),
                FlowState::Locked => Some("too many wrong codes".into()),
                FlowState::Expired => Some("the link's lifetime ended".into()),
                _ => None,
            },
            superseded_by: flow.superseded_by.clone(),
            ..EventData::of_flow(flow)
        };
        (kind, data)
    });
    let completed = before_state != FlowState::Completed && flow.state == FlowState::Completed;
    (event, completed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Address, FlowKind};

    const MIN: u64 = 60_000;

    fn flow() -> FlowRecord {
        FlowRecord::issued(
            "f".into(),
            FlowKind::Setup,
            Address::parse("a@example.jp").unwrap(),
            "ja".into(),
            0,
            24 * 60 * MIN,
        )
    }

    fn code(c: &str) -> NewCode {
        NewCode {
            hash: secret::code_digest_hex("f", c),
            binding_hash: "b".repeat(64),
            asked_by: Some("b".repeat(64)),
            lifetime_ms: 10 * MIN,
            resend_interval_ms: MIN,
        }
    }

    fn try_code(f: &mut FlowRecord, now: u64, c: &str) -> CodeOutcome {
        submit_code(
            f,
            now,
            &secret::code_digest_hex("f", c),
            Some(&"b".repeat(64)),
        )
    }

    #[test]
    fn the_happy_path_reaches_completed() {
        let mut f = flow();
        message_delivered(&mut f, 1, "invite");
        assert_eq!(f.state, FlowState::Mailed);
        press_button(&mut f, MIN, code("123456")).unwrap();
        message_delivered(&mut f, MIN + 1, "code");
        assert_eq!(f.state, FlowState::CodeSent);
        assert_eq!(try_code(&mut f, MIN + 2, "123456"), CodeOutcome::Verified);
        assert!(may_set_password(&f, MIN + 3, Some(&"b".repeat(64))));
        assert!(!may_set_password(&f, MIN + 3, Some(&"c".repeat(64))));
        assert!(complete(&mut f, MIN + 4, Some(&"b".repeat(64))));
        assert_eq!(f.state, FlowState::Completed);
        assert!(!complete(&mut f, MIN + 5, Some(&"b".repeat(64))));
    }

    #[test]
    fn a_link_used_before_its_delivery_was_recorded_still_tells_mailed_once() {
        let mut f = flow();
        let pressed = Transition::PressButton(code("123456"));
        let before = Before::of(&f);
        pressed.apply(&mut f, MIN);
        assert_eq!(told(before, &f).0.unwrap().0, EventType::FlowOpened);
        // The invitation's delivery is recorded only now: the state stays, the
        // application still hears that the mail arrived.
        let delivered = Transition::MessageDelivered {
            template: "invite".into(),
        };
        let before = Before::of(&f);
        assert_eq!(delivered.apply(&mut f, MIN + 1), Outcome::Changed(true));
        assert_eq!(f.state, FlowState::Opened);
        assert_eq!(told(before, &f).0.unwrap().0, EventType::FlowMailed);
        // A second delivery (a resent invitation) tells nothing more.
        let before = Before::of(&f);
        assert_eq!(delivered.apply(&mut f, MIN + 2), Outcome::Changed(false));
        assert_eq!(told(before, &f).0, None);
    }

    #[test]
    fn a_code_is_accepted_once_and_only_in_the_browser_that_asked() {
        let mut f = flow();
        press_button(&mut f, 0, code("123456")).unwrap();
        assert_eq!(
            submit_code(
                &mut f,
                1,
                &secret::code_digest_hex("f", "123456"),
                Some(&"c".repeat(64))
            ),
            CodeOutcome::WrongBrowser
        );
        assert_eq!(
            submit_code(&mut f, 1, &secret::code_digest_hex("f", "123456"), None),
            CodeOutcome::WrongBrowser
        );
        assert_eq!(try_code(&mut f, 2, "123456"), CodeOutcome::Verified);
        assert_eq!(try_code(&mut f, 3, "123456"), CodeOutcome::CodeUsed);
    }

    #[test]
    fn the_sixth_try_is_refused_even_when_right() {
        let mut f = flow();
        press_button(&mut f, 0, code("123456")).unwrap();
        for left in (0..5).rev() {
            assert_eq!(
                try_code(&mut f, 1, "000000"),
                CodeOutcome::Wrong { tries_left: left }
            );
        }
        assert_eq!(try_code(&mut f, 2, "123456"), CodeOutcome::TriesUsedUp);
    }

    #[test]
    fn codes_expire_and_are_not_reissued_within_a_minute() {
        let mut f = flow();
        press_button(&mut f, 0, code("123456")).unwrap();
        assert_eq!(
            press_button(&mut f, 30_000, code("654321")),
            Err(ButtonRefusal::TooSoon { wait_s: 30 })
        );
        assert_eq!(
            try_code(&mut f, 10 * MIN, "123456"),
            CodeOutcome::CodeExpired
        );
        press_button(&mut f, 10 * MIN, code("654321")).unwrap();
        assert_eq!(
            try_code(&mut f, 10 * MIN + 1, "654321"),
            CodeOutcome::Verified
        );
    }

    #[test]
    fn another_browsers_press_never_delays_the_person() {
        let mut f = flow();
        // A scanner (no binding cookie) presses first; the person's press follows at once.
        let scanner = NewCode {
            binding_hash: "s".repeat(64),
            asked_by: None,
            ..code("111111")
        };
        press_button(&mut f, 0, scanner.clone()).unwrap();
        let person = NewCode {
            asked_by: None,
            ..code("123456")
        };
        press_button(&mut f, 1_000, person).unwrap();
        assert_eq!(try_code(&mut f, 2_000, "123456"), CodeOutcome::Verified);
        // The browser that asked is held to the interval.
        let mut g = flow();
        press_button(&mut g, 0, code("123456")).unwrap();
        assert!(matches!(
            press_button(&mut g, 1_000, code("654321")),
            Err(ButtonRefusal::TooSoon { .. })
        ));
    }

    #[test]
    fn a_code_never_outlives_its_link() {
        let mut f = flow();
        let link_ends = f.expires_ms;
        press_button(&mut f, link_ends - 2 * MIN, code("123456")).unwrap();
        assert_eq!(f.code.as_ref().unwrap().expires_ms, link_ends);
    }

    #[test]
    fn twenty_failures_in_a_day_lock_the_flow_but_old_ones_are_forgotten() {
        let mut f = flow();
        let mut now = 0;
        // 19 failures spread over more than a day: never locked.
        for i in 0..19 {
            if i % 5 == 0 {
                now += 2 * MIN;
                press_button(&mut f, now, code("123456")).unwrap();
            }
            assert!(matches!(
                try_code(&mut f, now, "000000"),
                CodeOutcome::Wrong { .. }
            ));
        }
        f.expires_ms = u64::MAX;
        now += DAY_MS;
        press_button(&mut f, now, code("123456")).unwrap();
        assert!(matches!(
            try_code(&mut f, now, "000000"),
            CodeOutcome::Wrong { .. }
        ));
        assert_eq!(f.failures_ms.len(), 1);
        // Then 19 more within the day: the 20th locks.
        let mut last = CodeOutcome::NoCode;
        for i in 0..19 {
            if i % 5 == 4 {
                now += MIN;
                press_button(&mut f, now, code("123456")).unwrap();
            }
            last = try_code(&mut f, now, "000000");
        }
        assert_eq!(last, CodeOutcome::Locked);
        assert_eq!(f.state, FlowState::Locked);
        assert_eq!(try_code(&mut f, now, "123456"), CodeOutcome::Locked);
        assert_eq!(
            press_button(&mut f, now + 2 * MIN, code("1")),
            Err(ButtonRefusal::Closed(FlowState::Locked))
        );
    }

    #[test]
    fn an_expired_or_superseded_flow_refuses_everything() {
        let mut f = flow();
        let late = f.expires_ms;
        assert_eq!(effective_state(&f, late), FlowState::Expired);
        assert_eq!(
            press_button(&mut f, late, code("1")),
            Err(ButtonRefusal::Closed(FlowState::Expired))
        );
        let mut g = flow();
        assert!(supersede(&mut g, 1, "new"));
        assert!(!mark_undeliverable(&mut g, 2, "5.1.1"));
        assert_eq!(
            try_code(&mut g, 3, "123456"),
            CodeOutcome::Closed(FlowState::Superseded)
        );
    }

    #[test]
    fn visits_are_noted_but_bounded() {
        let mut f = flow();
        for i in 0..100 {
            note(&mut f, i, "link_visited", None);
            note(&mut f, i, "code_wrong", None);
        }
        let count = |what: &str| f.notes.iter().filter(|n| n.what == what).count();
        assert_eq!(count("link_visited"), MAX_VISIT_NOTES);
        assert_eq!(count("code_wrong"), MAX_NOTES_OF_A_KIND);
        assert!(notes_full(&f, "link_visited"));
    }
}
