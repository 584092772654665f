//! Key encoding. Every key is a byte string whose byte order is the order scans need:
//! numbers are big-endian, text parts end in a 0 byte so a prefix scan for one address
//! never runs into a longer address that begins the same way.

use crate::domain::MessageId;

/// Queue key: due time in milliseconds since the epoch, then the message id, so a range
/// scan from the start yields the work that is due first.
pub fn queue(due_ms: u64, id: &MessageId) -> Vec<u8> {
    let mut k = Vec::with_capacity(24);
    k.extend_from_slice(&due_ms.to_be_bytes());
    k.extend_from_slice(id.as_bytes());
    k
}

/// Splits a queue key back into its due time and message id.
pub fn parse_queue(k: &[u8]) -> Option<(u64, MessageId)> {
    if k.len() != 24 {
        return None;
    }
    let due = u64::from_be_bytes(k[..8].try_into().ok()?);
    let id: [u8; 16] = k[8..].try_into().ok()?;
    Some((due, MessageId::from_bytes(id)))
}

/// Address index key: the address (domain lower-cased by `Address`), a 0 byte, the
/// creation time and the message id.
pub fn address_index(address: &str, created_ms: u64, id: &[u8]) -> Vec<u8> {
    let mut k = address_prefix(address);
    k.extend_from_slice(&created_ms.to_be_bytes());
    k.extend_from_slice(id);
    k
}

/// The prefix under which every entry for `address` lies.
pub fn address_prefix(address: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(address.len() + 25);
    k.extend_from_slice(address.as_bytes());
    k.push(0);
    k
}

/// Reversed address index key: the address with its characters in reverse order
/// (`pj.elpmaxe@okanah`), then as [`address_index`]: every address at one domain lies
/// under one prefix.
pub fn reversed_address_index(address: &str, created_ms: u64, id: &[u8]) -> Vec<u8> {
    address_index(&crate::domain::address::reversed(address), created_ms, id)
}

/// The address part of an address index key (before its 0 byte).
pub fn address_of(key: &[u8]) -> Option<&[u8]> {
    key.iter().position(|b| *b == 0).map(|end| &key[..end])
}

/// The first key after every entry of the address `part`: a scan that starts here
/// skips the rest of that address's messages and lands on the next address.
pub fn after_address(part: &[u8]) -> Vec<u8> {
    let mut k = part.to_vec();
    k.push(1);
    k
}

/// A time-ordered key with a random suffix, for append-only logs (bounces, audit).
pub fn time_ordered(ms: u64, suffix: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(8 + suffix.len());
    k.extend_from_slice(&ms.to_be_bytes());
    k.extend_from_slice(suffix);
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_keys_sort_by_due_time_and_round_trip() {
        let a = MessageId::random();
        let b = MessageId::random();
        assert!(queue(1, &a) < queue(2, &b));
        assert!(queue(255, &a) < queue(256, &b));
        assert_eq!(parse_queue(&queue(42, &a)), Some((42, a)));
    }

    #[test]
    fn an_address_prefix_does_not_match_a_longer_address() {
        let short = address_index("a@b.jp", 5, b"x");
        let long = address_index("a@b.jpx", 5, b"x");
        assert!(short.starts_with(&address_prefix("a@b.jp")));
        assert!(!long.starts_with(&address_prefix("a@b.jp")));
    }

    #[test]
    fn after_an_address_comes_the_next_address_and_not_its_own_entries() {
        let id = [0xffu8; 16];
        let last_of_a = address_index("hana@b.jp", u64::MAX, &id);
        let next = address_index("hana@b.jpx", 0, &[0; 16]);
        let longer_local = address_index("hanako@b.jp", 0, &[0; 16]);
        let skip = after_address(address_of(&last_of_a).unwrap());
        assert!(
            last_of_a < skip,
            "every entry of hana@b.jp sorts before the skip key"
        );
        assert!(skip <= next && skip <= longer_local);
        assert_eq!(address_of(&last_of_a), Some(&b"hana@b.jp"[..]));
    }

    #[test]
    fn a_domain_is_a_prefix_of_the_reversed_index() {
        let k = reversed_address_index("hanako@example.jp", 7, b"x");
        assert!(k.starts_with("pj.elpmaxe@".as_bytes()));
        assert_eq!(address_of(&k), Some("pj.elpmaxe@okanah".as_bytes()));
    }
}
