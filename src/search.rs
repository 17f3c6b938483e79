//! Text search over the catalog (`/collections?q=`): Swedish folding, a small Swedish stemmer,
//! the query's words and how a collection's title, keywords and description match them. Pure
//! functions; the API decides what to search and how to answer.
//!
//! A query word matches a text word when, after folding (lower case, accents off: `Malmö` is
//! `malmo`) and stemming (`parkeringarna` is `parkering`), they are equal, or when the text word
//! is a compound whose last part is the query word (`parkering` finds `miljöparkering`,
//! `vatten` finds `badvatten`). Prefixes do not match: `bad` does not find `badplatser`, `park`
//! does not find `parkering`, because a prefix of a Swedish word is most often another word.

use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

/// Longest `q` accepted, in characters.
pub const MAX_QUERY_CHARS: usize = 200;
/// Most words in one `q`.
pub const MAX_QUERY_WORDS: usize = 16;

/// Shortest query stem that may match the last part of a compound (`plats` → `plat`), and the
/// shortest first part: shorter ones would make `ring` find `parkering`.
const MIN_HEAD_STEM: usize = 4;
const MIN_HEAD_WORD: usize = 5;
const MIN_COMPOUND_PREFIX: usize = 3;

/// Lower case with accents removed, as `unaccent(lower(…))` does for the letters Swedish
/// text holds: å, ä, ö, é, ü … lose their marks; æ, ø, ß, ł, đ are spelled out.
pub fn fold(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.nfd().flat_map(char::to_lowercase) {
        match c {
            c if is_combining_mark(c) => {}
            'æ' => out.push_str("ae"),
            'ø' => out.push('o'),
            'ß' => out.push_str("ss"),
            'ł' => out.push('l'),
            'đ' => out.push('d'),
            'þ' => out.push_str("th"),
            c => out.push(c),
        }
    }
    out
}

/// The folded words of `s`: runs of letters and digits.
pub fn words(s: &str) -> Vec<String> {
    fold(s)
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

fn is_vowel(c: char) -> bool {
    matches!(c, 'a' | 'e' | 'i' | 'o' | 'u' | 'y')
}

/// Snowball Swedish's step 1 endings (folded), longest first.
const ENDINGS: &[&str] = &[
    "heterna", "hetens", "anden", "andes", "andet", "arens", "arnas", "ernas", "ornas", "heten",
    "heter", "ades", "ande", "aren", "arna", "arne", "aste", "erna", "erns", "orna", "ade", "are",
    "ast", "ens", "ern", "het", "ad", "ar", "as", "at", "en", "er", "es", "or", "a", "e",
];

/// Letters after which a final `s` is an ending (Snowball's s-ending).
fn s_ending(c: char) -> bool {
    "bcdfghjklmnoprtvy".contains(c)
}

/// The stem of a folded word: a reduced Snowball Swedish. Step 1 removes the longest
/// inflectional ending in R1 (`-ar`, `-en`, `-arna`, `-er` …); then a final `s` after a
/// consonant is removed too (Snowball does either, not both, so `badplats` and `badplatser`
/// would stem apart); step 2 undoubles `dd gd nn dt gt kt tt`; step 3 removes `lig ig els`.
/// Words of digits, and words shorter than four letters, are left alone.
pub fn stem(word: &str) -> String {
    let mut w: Vec<char> = word.chars().collect();
    if w.len() < 4 || !w.iter().all(|c| c.is_ascii_lowercase()) {
        return word.to_string();
    }
    // R1: after the first non-vowel that follows a vowel, and at least 3 letters in.
    let r1 = w
        .windows(2)
        .position(|p| is_vowel(p[0]) && !is_vowel(p[1]))
        .map_or(w.len(), |i| i + 2)
        .max(3);
    let ends = |w: &[char], suffix: &str| {
        let n = suffix.len();
        w.len() >= n && w.len() - n >= r1 && w[w.len() - n..].iter().copied().eq(suffix.chars())
    };
    // Step 1.
    if let Some(e) = ENDINGS.iter().find(|e| ends(&w, e)) {
        w.truncate(w.len() - e.len());
    }
    if ends(&w, "s") && w.len() >= 2 && s_ending(w[w.len() - 2]) {
        w.pop();
    }
    // Step 2.
    if ["dd", "gd", "nn", "dt", "gt", "kt", "tt"]
        .iter()
        .any(|e| ends(&w, e))
    {
        w.pop();
    }
    // Step 3.
    if ends(&w, "fullt") || ends(&w, "lost") {
        w.pop();
    } else if let Some(e) = ["lig", "els", "ig"].iter().find(|e| ends(&w, e)) {
        w.truncate(w.len() - e.len());
    }
    w.into_iter().collect()
}

/// Whether a folded text word matches a query stem (see the module comment).
fn word_matches(word: &str, word_stem: &str, key: &str) -> bool {
    if word_stem == key {
        return true;
    }
    if key.chars().count() < MIN_HEAD_STEM {
        return false;
    }
    word.char_indices()
        .skip(MIN_COMPOUND_PREFIX)
        .map(|(i, _)| &word[i..])
        .filter(|tail| tail.chars().count() >= MIN_HEAD_WORD && tail.starts_with(key))
        .any(|tail| stem(tail) == key)
}

/// Where a collection matched: how many query words hit its title, keywords or description
/// (each word counted once, in the best of the three). Orders best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Score {
    pub title: usize,
    pub keywords: usize,
    pub description: usize,
}

/// A parsed `q`: alternatives separated by commas (any may match), each a list of words that
/// must all match, as OGC API – Records reads `q`. Word order is not required.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    terms: Vec<Vec<String>>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum QueryError {
    #[error("q is too long: at most {MAX_QUERY_CHARS} characters")]
    TooLong,
    #[error("q has too many words: at most {MAX_QUERY_WORDS}")]
    TooManyWords,
}

/// The searchable text of one collection, folded and stemmed once.
pub struct Document {
    fields: [Vec<(String, String)>; 3],
}

impl Document {
    pub fn new(title: &str, keywords: &[String], description: Option<&str>) -> Self {
        let prepare = |text: &str| -> Vec<(String, String)> {
            words(text)
                .into_iter()
                .map(|w| {
                    let s = stem(&w);
                    (w, s)
                })
                .collect()
        };
        Self {
            fields: [
                prepare(title),
                prepare(&keywords.join(" ")),
                prepare(description.unwrap_or("")),
            ],
        }
    }

    /// The first field (0 title, 1 keywords, 2 description) with a word matching `key`.
    fn best_field(&self, key: &str) -> Option<usize> {
        self.fields
            .iter()
            .position(|f| f.iter().any(|(w, s)| word_matches(w, s, key)))
    }
}

impl Query {
    /// Parses `q`; `None` when it holds no words (no filter).
    pub fn parse(q: &str) -> Result<Option<Self>, QueryError> {
        if q.chars().count() > MAX_QUERY_CHARS {
            return Err(QueryError::TooLong);
        }
        let terms: Vec<Vec<String>> = q
            .split(',')
            .map(|t| words(t).iter().map(|w| stem(w)).collect::<Vec<_>>())
            .filter(|t| !t.is_empty())
            .collect();
        if terms.iter().map(Vec::len).sum::<usize>() > MAX_QUERY_WORDS {
            return Err(QueryError::TooManyWords);
        }
        Ok((!terms.is_empty()).then_some(Self { terms }))
    }

    /// How well `doc` matches, or `None` when no alternative has all its words in it.
    pub fn score(&self, doc: &Document) -> Option<Score> {
        self.terms
            .iter()
            .filter_map(|term| {
                let mut score = Score::default();
                for key in term {
                    match doc.best_field(key)? {
                        0 => score.title += 1,
                        1 => score.keywords += 1,
                        _ => score.description += 1,
                    }
                }
                Some(score)
            })
            .max()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(q: &str, title: &str) -> bool {
        Query::parse(q)
            .expect("valid")
            .expect("words")
            .score(&Document::new(title, &[], None))
            .is_some()
    }

    #[test]
    fn folding_lowers_and_strips_accents() {
        assert_eq!(fold("Malmö"), "malmo");
        assert_eq!(fold("HÄRRYDA Åre"), "harryda are");
        assert_eq!(fold("Café Øresund Straße"), "cafe oresund strasse");
        assert_eq!(
            words("Badplatser (bathing sites), Härryda"),
            ["badplatser", "bathing", "sites", "harryda"]
        );
    }

    #[test]
    fn plural_and_definite_forms_share_a_stem() {
        for w in [
            "parkering",
            "parkeringar",
            "parkeringen",
            "parkeringarna",
            "parkeringens",
        ] {
            assert_eq!(stem(w), "parkering", "{w}");
        }
        for w in [
            "badplats",
            "badplatser",
            "badplatsen",
            "badplatserna",
            "badplatsens",
        ] {
            assert_eq!(stem(w), "badplat", "{w}");
        }
        for w in ["hallplats", "hallplatser", "hallplatsen"] {
            assert_eq!(stem(w), "hallplat", "{w}");
        }
        assert_eq!(stem("malmo"), "malmo");
        assert_eq!(stem("malmos"), "malmo");
        // Short words and numbers are left alone.
        assert_eq!(stem("bad"), "bad");
        assert_eq!(stem("2024"), "2024");
    }

    #[test]
    fn searches_fold_and_stem_both_sides() {
        assert!(matches("malmo", "Miljöparkering, Malmö"));
        assert!(matches("MALMÖ", "miljoparkering, malmo"));
        assert!(matches("badplatser", "Badplatser, Härryda kommun"));
        assert!(matches("badplats", "Badplatser, Härryda kommun"));
        assert!(matches("badplatsen", "Badplatser"));
        assert!(matches("parkeringarna", "Parkering i centrum"));
        assert!(matches("parkering", "Parkeringar"));
    }

    #[test]
    fn compounds_match_their_last_part() {
        assert!(matches("parkeringar", "Miljöparkering, Malmö"));
        assert!(matches("vatten", "badvatten"));
        assert!(matches("platser", "Badplatser"));
    }

    #[test]
    fn prefixes_and_fragments_do_not_match() {
        assert!(!matches("bad", "Badplatser"));
        assert!(!matches("park", "Parkeringar"));
        assert!(!matches("malm", "Malmö"));
        assert!(!matches("ring", "Miljöparkering"));
        assert!(!matches("parkeringsplats", "Parkering"));
        assert!(!matches("lund", "Malmö"));
    }

    #[test]
    fn every_word_must_match_and_commas_are_alternatives() {
        assert!(matches("malmo parkering", "Miljöparkering, Malmö"));
        assert!(!matches("malmo badplats", "Miljöparkering, Malmö"));
        assert!(matches("badplats, malmo", "Miljöparkering, Malmö"));
        assert_eq!(Query::parse("  , ").expect("valid"), None);
        assert_eq!(Query::parse(""), Ok(None));
        assert_eq!(
            Query::parse(&"a".repeat(MAX_QUERY_CHARS + 1)),
            Err(QueryError::TooLong)
        );
        assert_eq!(
            Query::parse(&"ord ".repeat(MAX_QUERY_WORDS + 1)),
            Err(QueryError::TooManyWords)
        );
    }

    #[test]
    fn title_hits_rank_above_keyword_and_description_hits() {
        let q = Query::parse("badplatser").expect("valid").expect("words");
        let title = q.score(&Document::new("Badplatser", &[], None));
        let keyword = q.score(&Document::new("Bathing", &["badplatser".into()], None));
        let description = q.score(&Document::new("Bathing", &[], Some("Alla badplatser")));
        assert!(title > keyword && keyword > description && description.is_some());
    }
}
