//! Persons named in prose: a given name from the gazetteer followed by a surname
//! (`Jan Kowalski`, `Anna K. Nowak`, `Pieter van der Berg`), or any capitalized name after a
//! title or a role (`Herr Nowakowski`, `the analyst Jannik Brandstetter`).
//!
//! The gazetteer (`data/given-names.txt`, `data/surnames.txt`) holds the given names and
//! surnames of the EU's and its neighbours' locales from Faker's maintained tables (MIT), written
//! by `scripts/gazetteer`; it is compiled into the binary.

use std::collections::HashSet;

use super::Entity;
use super::commands::Found;
use super::tables::{NOT_NAMES, PERSON_CUES};

static GIVEN: &str = include_str!("../../data/given-names.txt");
static SURNAMES: &str = include_str!("../../data/surnames.txt");

/// Given names that are also common words or places, which make a name only with a surname
/// the gazetteer knows (`Grant Access` is no one; `Grant Smith` is someone).
const AMBIGUOUS: &[&str] = &[
    "Will", "May", "Mark", "Grant", "Bill", "Chase", "Hunter", "Max", "Rose", "Summer", "April", "June", "August",
    "Page", "Hope", "Faith", "Joy", "Pat", "Sunny", "Rich", "Art", "Don", "Ray", "Jack", "Frank", "Guy", "Lane",
    "Dean", "Gene", "Sky", "Star", "Golden", "Royal", "Crystal", "Amber", "Ruby", "Jade", "Pearl", "Iris", "Ivy",
    "Holly", "Dawn", "Eve", "Victoria", "Florence", "Georgia", "Virginia", "Carolina", "Austin", "Dallas", "Jordan",
    "Chelsea", "Paris", "Sydney", "Lincoln", "Jersey", "Kent", "Mercedes", "Alexa", "Siri", "Ada", "Julia", "Jan",
    "Nick", "Sam", "Bob", "Patch", "Cobalt", "Carbon", "Angel", "Sage", "Misty", "Storm", "Windows", "Basil", "Clay",
    "Cliff", "Dale", "Glen", "Heath", "Miles", "Reed", "Rod", "Wade", "Sterling", "Price", "Marshal", "Marshall",
    "Noble", "Major", "King", "Prince", "Duke", "Earl", "Baron", "Bishop", "Deacon", "Pastor", "Carter", "Cooper",
    "Mason", "Parker", "Porter", "Tanner", "Taylor", "Turner", "Walker", "Archer", "Fisher", "Hunter", "Sawyer",
    "Spencer", "Chance", "Case", "Memory", "Destiny", "Justice", "Harmony", "Melody", "Serenity", "Trinity", "Unity",
    "Liberty", "Journey", "Lux", "Nova", "Echo", "Phoenix", "Orion", "Atlas", "Apollo", "Titan", "Zeus", "Thor",
    "Loki", "Odin", "Freya", "Juno", "Venus", "Mars", "Luna", "Stella", "Aurora", "Iris", "Flora", "Viola",
];

/// Lower-case words between a given name and a surname (`van der`, `de la`, `von`, `di`).
const PARTICLES: &[&str] = &[
    "van", "der", "den", "de", "del", "della", "di", "da", "das", "dos", "do", "du", "la", "le", "von", "zu", "ten",
    "ter", "y", "i", "af", "al", "el", "mac", "o'",
];

/// The gazetteer and the cues.
pub(super) struct Names {
    given: HashSet<&'static str, foldhash::fast::FixedState>,
    surnames: HashSet<&'static str, foldhash::fast::FixedState>,
    not_names: HashSet<&'static str, foldhash::fast::FixedState>,
    ambiguous: HashSet<&'static str, foldhash::fast::FixedState>,
    /// The cues in lower case: those written with a dot (`Dr.`) apart, without it.
    cues: HashSet<String, foldhash::fast::FixedState>,
    dotted_cues: HashSet<String, foldhash::fast::FixedState>,
}

fn entries(list: &'static str) -> impl Iterator<Item = &'static str> {
    list.lines().filter(|l| !l.is_empty() && !l.starts_with('#'))
}

/// A word of a text: its span and whether it starts with a capital followed by a small letter.
#[derive(Debug, Clone, Copy)]
struct Word {
    start: usize,
    end: usize,
}

impl Names {
    pub(super) fn load() -> Names {
        Names {
            given: entries(GIVEN).collect(),
            surnames: entries(SURNAMES).collect(),
            not_names: NOT_NAMES.iter().copied().collect(),
            ambiguous: AMBIGUOUS.iter().copied().collect(),
            cues: PERSON_CUES
                .iter()
                .filter(|c| !c.ends_with('.'))
                .map(|c| c.to_lowercase())
                .collect(),
            dotted_cues: PERSON_CUES
                .iter()
                .filter_map(|c| c.strip_suffix('.'))
                .map(str::to_lowercase)
                .collect(),
        }
    }

    /// How many names the gazetteer holds (given names, surnames).
    pub(super) fn size(&self) -> (usize, usize) {
        (self.given.len(), self.surnames.len())
    }

    /// Whether `w` is a given name (`Marie-Claire`: each part is one).
    pub(super) fn is_given(&self, w: &str) -> bool {
        self.given.contains(w) || (w.contains('-') && w.split('-').all(|p| self.given.contains(p)))
    }

    /// Whether `w` is a surname (`Müller-Lüdenscheidt`: one part is one).
    pub(super) fn is_surname(&self, w: &str) -> bool {
        self.surnames.contains(w) || (w.contains('-') && w.split('-').any(|p| self.surnames.contains(p)))
    }

    /// Whether `w` can be part of a name: capitalized, and no technical word.
    fn name_word(&self, w: &str) -> bool {
        capitalized(w) && !self.not_names.contains(w)
    }

    /// Whether `value` (one to four words) reads as a person's name where a label says it is one.
    pub(super) fn labelled_name(&self, value: &str) -> bool {
        let words: Vec<&str> = value.split(' ').filter(|w| !w.is_empty()).collect();
        if words.is_empty() || words.iter().any(|w| !self.name_word(w) && !PARTICLES.contains(w)) {
            return false;
        }
        words.len() >= 2 || self.is_given(words[0]) || self.is_surname(words[0])
    }

    /// The persons named in `text`.
    pub(super) fn find(&self, text: &str, out: &mut Vec<Found>) {
        // A name is two words or more, joined by a space (`joined`).
        if memchr::memchr(b' ', text.as_bytes()).is_none() && !text.contains('\u{a0}') {
            return;
        }
        let words = words(text);
        let mut i = 0;
        while i < words.len() {
            let w = &text[words[i].start..words[i].end];
            // Most words are no name: the cheapest tests first, one lookup for most words.
            let capital = capitalized(w);
            // A given name makes a name only with a surname after it: the next word, joined,
            // is capitalized (or an initial) or a particle (`van der Berg`).
            let followed = words.get(i + 1).is_some_and(|&next| {
                let n = &text[next.start..next.end];
                joined(text, words[i], next) && (capitalized(n) || PARTICLES.contains(&n))
            });
            let given = capital && followed && self.is_given(w);
            let cue = capital
                && i > 0
                && joined(text, words[i - 1], words[i])
                && self.cue(text, words[i - 1])
                && !self.not_names.contains(w);
            let taken = if cue {
                self.extend(text, &words, i, true)
            } else if given && !self.not_names.contains(w) {
                self.extend(text, &words, i, false)
            } else {
                None
            };
            match taken {
                Some(last) => {
                    out.push((Entity::Person, words[i].start, words[last].end, "person-name"));
                    i = last + 1;
                }
                None => i += 1,
            }
        }
    }

    /// Whether `w` is a title or a role that announces a name.
    fn cue(&self, text: &str, w: Word) -> bool {
        let word = &text[w.start..w.end];
        let dotted = text[w.end..].starts_with('.');
        let look = |lower: &str| self.cues.contains(lower) || (dotted && self.dotted_cues.contains(lower));
        // Most words are short and ASCII: folded on the stack.
        let mut buf = [0u8; 24];
        if word.is_ascii() && word.len() <= buf.len() {
            let folded = &mut buf[..word.len()];
            folded.copy_from_slice(word.as_bytes());
            folded.make_ascii_lowercase();
            return std::str::from_utf8(folded).is_ok_and(look);
        }
        look(&word.to_lowercase())
    }

    /// The last word of the name that starts at `words[first]`, if one does: more given names or
    /// initials, particles, then a surname (or, after a cue, the capitalized words themselves).
    fn extend(&self, text: &str, words: &[Word], first: usize, cued: bool) -> Option<usize> {
        let given = &text[words[first].start..words[first].end];
        let mut last = first;
        let mut surname = None;
        let mut j = first + 1;
        while j < words.len() && j <= first + 4 && joined(text, words[j - 1], words[j]) {
            let w = &text[words[j].start..words[j].end];
            if PARTICLES.contains(&w) {
                j += 1;
                continue;
            }
            if !self.name_word(w) {
                break;
            }
            let initial = w.chars().count() == 1;
            if !initial {
                last = j;
                if surname.is_none() || self.is_surname(w) {
                    surname = Some(w);
                }
                if !self.is_given(w) && surname.is_some() && !self.is_surname(w) {
                    break;
                }
            }
            j += 1;
        }
        if cued {
            return Some(last);
        }
        let surname = surname?;
        let known = self.is_surname(surname);
        (known || (!self.ambiguous.contains(given) && surname_shaped(surname))).then_some(last)
    }
}

/// Endings of European surnames (Polish, Czech and Slovak, Russian and Bulgarian, Romanian,
/// South Slavic, Nordic, Finnish, Spanish and Portuguese patronymics, Italian, German, Greek,
/// Lithuanian, Latvian, Hungarian, Irish and Scottish prefixes are handled apart).
const SURNAME_ENDINGS: &[&str] = &[
    "ski", "ska", "cki", "cka", "dzki", "dzka", "wicz", "czyk", "czak", "owa", "ová", "ný", "ná", "ov", "ova", "ev",
    "eva", "escu", "eanu", "ović", "ević", "ić", "sson", "sen", "son", "dóttir", "nen", "inen", "ez", "iak", "elli",
    "etti", "ini", "ucci", "acci", "mann", "berg", "stein", "baum", "feld", "hofer", "huber", "bauer", "müller",
    "meier", "poulos", "akis", "idis", "aitė", "ienė", "ins", "ovs", "ffy",
];

/// Whether an unknown capitalized word reads as a surname: at least four letters and a
/// surname's ending, or an Irish or Scottish prefix (`O'Brien`, `McKenna`, `MacLeod`).
fn surname_shaped(w: &str) -> bool {
    let letters = w.chars().count();
    let lower = w.to_lowercase();
    (letters >= 4 && SURNAME_ENDINGS.iter().any(|e| lower.ends_with(e)))
        || w.starts_with("O'")
        || w.starts_with("O’")
        || (letters >= 4
            && (w.starts_with("Mc") || w.starts_with("Mac"))
            && w[2..].starts_with(|c: char| c.is_uppercase() || c == 'c'))
}

/// Whether two words are separated by one space (a name's words are), or by an initial's dot
/// and a space (`K. Nowak`).
fn joined(text: &str, a: Word, b: Word) -> bool {
    let between = &text[a.end..b.start];
    between == " " || between == "\u{a0}" || between == ". "
}

/// Whether a word is capitalized as names are: an upper-case first letter and not all in upper
/// case (acronyms) unless it is one letter (an initial).
fn capitalized(w: &str) -> bool {
    let mut chars = w.chars();
    let Some(first) = chars.next() else { return false };
    if !first.is_uppercase() {
        return false;
    }
    chars.clone().next().is_none() || chars.any(char::is_lowercase)
}

/// The words of `text`: runs of letters, with `'`, `’` and `-` inside them. ASCII bytes are
/// read as bytes, the rest as characters.
fn words(text: &str) -> Vec<Word> {
    let bytes = text.as_bytes();
    let letter_at = |j: usize| match bytes.get(j) {
        Some(c) if c.is_ascii() => c.is_ascii_alphabetic(),
        Some(_) => text[j..].chars().next().is_some_and(char::is_alphabetic),
        None => false,
    };
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let (letter, len, joiner) = if c.is_ascii() {
            (c.is_ascii_alphabetic(), 1, c == b'\'' || c == b'-')
        } else {
            let ch = text[i..].chars().next().unwrap_or('\u{fffd}');
            (ch.is_alphabetic(), ch.len_utf8(), ch == '’')
        };
        if letter || (joiner && start.is_some() && letter_at(i + len)) {
            start.get_or_insert(i);
        } else if let Some(s) = start.take() {
            out.push(Word { start: s, end: i });
        }
        i += len;
    }
    if let Some(s) = start {
        out.push(Word {
            start: s,
            end: text.len(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Words as characters alone would give them: the oracle of the byte-wise reading.
    fn words_by_chars(text: &str) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        let mut start: Option<usize> = None;
        let mut chars = text.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            let inner = matches!(c, '\'' | '’' | '-')
                && start.is_some()
                && chars.peek().is_some_and(|(_, n)| n.is_alphabetic());
            if c.is_alphabetic() || inner {
                start.get_or_insert(i);
            } else if let Some(s) = start.take() {
                out.push((s, i));
            }
        }
        if let Some(s) = start {
            out.push((s, text.len()));
        }
        out
    }

    proptest::proptest! {
        #[test]
        fn words_read_by_bytes_are_words_read_by_characters(text in "[a-zA-Z0-9 '’._éÖßłЖ漢\u{a0}-]{0,40}") {
            let by_bytes: Vec<(usize, usize)> = words(&text).iter().map(|w| (w.start, w.end)).collect();
            proptest::prop_assert_eq!(by_bytes, words_by_chars(&text));
        }
    }

    fn persons(text: &str) -> Vec<String> {
        static N: std::sync::LazyLock<Names> = std::sync::LazyLock::new(Names::load);
        let mut out = Vec::new();
        N.find(text, &mut out);
        out.into_iter().map(|(_, s, e, _)| text[s..e].to_owned()).collect()
    }

    #[test]
    fn names_in_prose_in_several_languages() {
        assert_eq!(
            persons("The analyst Jan Kowalski reviewed the alert."),
            ["Jan Kowalski"]
        );
        assert_eq!(persons("Frau Brandstetter hat angerufen"), ["Brandstetter"]);
        assert_eq!(
            persons("Réunion avec Marie-Claire Dubois et M. Lefèvre."),
            ["Marie-Claire Dubois", "Lefèvre"]
        );
        assert_eq!(persons("escalated to Pieter van der Berg"), ["Pieter van der Berg"]);
        assert_eq!(persons("signed by Anna K. Nowak"), ["Anna K. Nowak"]);
        assert_eq!(persons("William Smith called"), ["William Smith"]);
        assert_eq!(persons("Grant Smith called, Grant Access denied"), ["Grant Smith"]);
        assert_eq!(persons("reviewed by Zbigniew Wrzesniewski"), ["Zbigniew Wrzesniewski"]);
        assert!(persons("ET TOR Known Tor Relay/Router").is_empty());
    }

    #[test]
    fn technical_phrases_are_no_one() {
        for text in [
            "Grant Access to Windows Defender",
            "Max Size exceeded",
            "Jan 12 10:00:01 host sshd[1]: Accepted",
            "Microsoft Windows Security Auditing",
            "C:\\Users\\Public\\Documents",
            "Mimikatz Credential Dumping via Cobalt Strike",
        ] {
            assert!(persons(text).is_empty(), "{text}: {:?}", persons(text));
        }
    }
}
