//! Cursors: where the next page of a list starts.
//!
//! Every list the API pages through is ordered by a time and an id (events and alerts by
//! their time, incidents by their last activity, runs, approvals and quarantined input by
//! their creation), so a page ends at a [`Position`] and the next one starts past it: keyset
//! paging, which never skips or repeats an item when items share a time or new ones arrive.
//! Clients see the position as an opaque cursor, bound to its list so that one list's cursor
//! handed to another is refused rather than silently misread.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jiff::Timestamp;
use rempart_model::EventId;
use rempart_store::Position;

use crate::ApiError;

/// The lists that hand out cursors, each with the tag its cursors carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum List {
    Events,
    Alerts,
    Incidents,
    Runs,
    Approvals,
    Quarantine,
}

impl List {
    const ALL: [List; 6] = [
        List::Events,
        List::Alerts,
        List::Incidents,
        List::Runs,
        List::Approvals,
        List::Quarantine,
    ];

    fn tag(self) -> &'static str {
        match self {
            List::Events => "events",
            List::Alerts => "alerts",
            List::Incidents => "incidents",
            List::Runs => "runs",
            List::Approvals => "approvals",
            List::Quarantine => "quarantine",
        }
    }

    /// The cursor of a position in this list.
    pub fn cursor(self, (time, id): Position) -> String {
        URL_SAFE_NO_PAD.encode(format!("{}.{}.{}", self.tag(), time.as_nanosecond(), id.0.simple()))
    }

    /// The position a cursor of this list stands for; a 400 naming why for anything else.
    pub fn position(self, cursor: &str) -> Result<Position, ApiError> {
        let refused = |why: &str| ApiError::BadRequest(format!("`cursor` is not a cursor of this list: {why}"));
        let bytes = URL_SAFE_NO_PAD
            .decode(cursor)
            .map_err(|_| refused("not base64url without padding"))?;
        let text = std::str::from_utf8(&bytes).map_err(|_| refused("not one the server wrote"))?;
        let mut parts = text.splitn(3, '.');
        let (Some(tag), Some(nanos), Some(id)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(refused("not one the server wrote"));
        };
        if tag != self.tag() {
            return Err(match List::ALL.into_iter().find(|l| l.tag() == tag) {
                Some(other) => refused(&format!("it came from the {} list", other.tag())),
                None => refused("not one the server wrote"),
            });
        }
        let time = nanos
            .parse::<i128>()
            .ok()
            .and_then(|n| Timestamp::from_nanosecond(n).ok())
            .ok_or_else(|| refused("its time is not one the server wrote"))?;
        let id = uuid::Uuid::try_parse(id)
            .ok()
            .ok_or_else(|| refused("its id is not one the server wrote"))?;
        let position = (time, EventId(id));
        // Only the spelling the server writes (no leading zeros, no other form of the id), so
        // that a position has one cursor.
        if self.cursor(position) != cursor {
            return Err(refused("not one the server wrote"));
        }
        Ok(position)
    }

    /// The answer's `next`: the cursor past the last item when the page is full (more may
    /// follow; a full last page leads to an empty one), else `None`, the list's end.
    pub fn next<T>(self, items: &[T], limit: u32, position: impl Fn(&T) -> Position) -> Option<String> {
        let full = u32::try_from(items.len()).is_ok_and(|n| n >= limit);
        items.last().filter(|_| full).map(|last| self.cursor(position(last)))
    }

    /// The position of an optional `cursor` parameter.
    pub fn past(self, cursor: Option<&str>) -> Result<Option<Position>, ApiError> {
        cursor.map(|c| self.position(c)).transpose()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn position(nanos: i64, id: u128) -> Position {
        (
            Timestamp::from_nanosecond(i128::from(nanos)).expect("an i64 of nanoseconds is a time"),
            EventId(uuid::Uuid::from_u128(id)),
        )
    }

    proptest! {
        /// A cursor stands for the position it was made from, in its own list only.
        #[test]
        fn a_cursor_round_trips_in_its_own_list_only(nanos in any::<i64>(), id in any::<u128>(), a in 0..6usize, b in 0..6usize) {
            let pos = position(nanos, id);
            let cursor = List::ALL[a].cursor(pos);
            prop_assert!(cursor.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
            let back = List::ALL[b].position(&cursor);
            if a == b {
                prop_assert_eq!(back.ok(), Some(pos));
            } else {
                let Err(ApiError::BadRequest(why)) = back else { panic!("another list's cursor was accepted") };
                prop_assert!(why.contains(List::ALL[a].tag()), "{why}");
            }
        }

        /// Any string is a position or a 400 naming the parameter: never a panic, never a guess.
        #[test]
        fn any_string_is_a_position_or_refused(s in ".{0,80}") {
            match List::Events.position(&s) {
                Ok(pos) => prop_assert_eq!(List::Events.cursor(pos), s),
                Err(ApiError::BadRequest(why)) => prop_assert!(why.starts_with("`cursor`"), "{why}"),
                Err(other) => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn a_full_page_has_a_next_cursor_and_a_short_one_ends_the_list() {
        let items = [position(2, 2), position(1, 1)];
        let next = List::Runs.next(&items, 2, |p| *p).expect("a full page goes on");
        assert_eq!(List::Runs.position(&next).ok(), Some(position(1, 1)));
        assert_eq!(List::Runs.next(&items, 3, |p| *p), None);
        assert_eq!(List::Runs.next::<Position>(&[], 1, |p| *p), None);
    }

    #[test]
    fn a_tampered_cursor_is_refused_with_its_reason() {
        let forged = URL_SAFE_NO_PAD.encode("events.12.not-a-uuid");
        let Err(ApiError::BadRequest(why)) = List::Events.position(&forged) else {
            panic!("accepted")
        };
        assert!(why.contains("its id"), "{why}");
        let Err(ApiError::BadRequest(why)) = List::Events.position("a+b/") else {
            panic!("accepted")
        };
        assert!(why.contains("base64url"), "{why}");
        // The same position spelt otherwise (a leading zero, a hyphenated id) is not a cursor.
        let id = uuid::Uuid::from_u128(7);
        for other in [
            format!("events.012.{}", id.simple()),
            format!("events.12.{}", id.hyphenated()),
        ] {
            let Err(ApiError::BadRequest(why)) = List::Events.position(&URL_SAFE_NO_PAD.encode(&other)) else {
                panic!("{other} accepted")
            };
            assert!(why.contains("not one the server wrote"), "{why}");
        }
        let canonical = URL_SAFE_NO_PAD.encode(format!("events.12.{}", id.simple()));
        assert!(List::Events.position(&canonical).is_ok());
    }
}
