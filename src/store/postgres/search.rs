//! Support's forgiving search on PostgreSQL: a loose index scan (a recursive query that
//! asks the index for the next address after the last one found) over the "C"-collated
//! address index, or the reversed one for a domain (migration 3). It reads one index
//! entry per address listed, however many messages each address has.

use async_trait::async_trait;

use super::{Postgres, ms};
use crate::domain::AddressPattern;
use crate::store::{Search, StoreError};

/// `text` as the start of a LIKE pattern that matches it literally.
fn like_prefix(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 1);
    for c in text.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// The loose index scan over the expression `key` (as the index spells it).
fn scan_sql(key: &str) -> String {
    format!(
        "WITH RECURSIVE found(k) AS (
             (SELECT {key} FROM messages WHERE {key} LIKE $1 ORDER BY 1 LIMIT 1)
             UNION ALL
             SELECT (SELECT {key} FROM messages
                     WHERE {key} LIKE $1 AND {key} > found.k ORDER BY 1 LIMIT 1)
             FROM found WHERE found.k IS NOT NULL
         )
         SELECT k FROM found WHERE k IS NOT NULL LIMIT $2"
    )
}

#[async_trait]
impl Search for Postgres {
    async fn addresses_matching(
        &self,
        pattern: &AddressPattern,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        let key = if pattern.is_domain() {
            "(reverse(address) COLLATE \"C\")"
        } else {
            "(address COLLATE \"C\")"
        };
        let client = self.client().await?;
        let rows = client
            .query(
                &scan_sql(key),
                &[&like_prefix(&pattern.index_prefix()), &ms(limit as u64)],
            )
            .await
            .map_err(self.query_error("listing the addresses that match a search"))?;
        let mut found: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
        if pattern.is_domain() {
            found = found
                .iter()
                .map(|r| crate::domain::address::reversed(r))
                .collect();
            found.sort();
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_wildcards_in_a_search_are_taken_literally() {
        assert_eq!(like_prefix("hana_ko%"), "hana\\_ko\\%%");
        assert_eq!(like_prefix("pj.elpmaxe@"), "pj.elpmaxe@%");
    }
}
