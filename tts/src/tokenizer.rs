//! Text → input ids, as transformers' `VitsTokenizer` (5.x) computes them from `vocab.json` and
//! `tokenizer_config.json`: optional lower-casing (`normalize`), phonemes from espeak-ng (`phonemize`, see
//! [`crate::phonemize`]) or, for character vocabularies, dropping what the vocabulary lacks; then one symbol per
//! character, split around the special tokens, with the blank (id 0) between symbols (`add_blank`).
//!
//! Not covered: `is_uroman` romanisation (transformers only warns when the `uroman` package is missing and goes
//! on with the text as it is; so does this), and the `lstrip`/`rstrip`/`single_word` flags of added tokens.

use std::collections::HashMap;
use std::path::Path;

use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use crate::error::{io_err, Result, TtsError};
use crate::phonemize::{python_strip, Espeak};

/// A VITS tokenizer.
#[derive(Debug, Clone)]
pub struct VitsTokenizer {
    /// `vocab.json` in file order (the order `normalize` tries entries in).
    vocab: Vec<(String, u32)>,
    ids: HashMap<String, u32>,
    /// Special and added tokens (pad, unk, `added_tokens_decoder`): matched whole, never split or padded.
    special: Vec<(String, u32)>,
    unk_id: Option<u32>,
    blank_id: Option<u32>,
    /// Insert the blank between symbols (and at both ends).
    pub add_blank: bool,
    /// Lower-case the text, except where it spells a vocabulary entry.
    pub normalize: bool,
    /// Turn the text into IPA phonemes with espeak-ng first.
    pub phonemize: bool,
    /// The checkpoint's language code (only `ron` changes the text: ț → ţ).
    pub language: Option<String>,
    /// The checkpoint expects romanised text (not implemented; see the module documentation).
    pub is_uroman: bool,
    /// The espeak-ng program and voice for `phonemize`.
    pub espeak: Espeak,
}

/// `tokenizer_config.json`; tokens may be strings or `{"content": ...}` objects.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct TokenizerConfig {
    add_blank: Option<bool>,
    normalize: Option<bool>,
    phonemize: Option<bool>,
    is_uroman: Option<bool>,
    language: Option<String>,
    pad_token: Option<TokenSpec>,
    unk_token: Option<TokenSpec>,
    added_tokens_decoder: HashMap<String, TokenSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum TokenSpec {
    Text(String),
    Object { content: String },
}

impl TokenSpec {
    fn content(&self) -> &str {
        match self {
            TokenSpec::Text(s) | TokenSpec::Object { content: s } => s,
        }
    }
}

/// `vocab.json` keeping the file's order (serde_json's map would sort it).
struct OrderedVocab(Vec<(String, u32)>);

impl<'de> Deserialize<'de> for OrderedVocab {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OrderedVocab;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object mapping symbols to ids")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<OrderedVocab, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, u32>()? {
                    out.push((k, v));
                }
                Ok(OrderedVocab(out))
            }
        }
        d.deserialize_map(V)
    }
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(io_err(path))?;
    serde_json::from_str(&text).map_err(|e| TtsError::Config { path: path.to_owned(), reason: e.to_string() })
}

impl VitsTokenizer {
    /// Reads `vocab.json`, `tokenizer_config.json` and (if present) `added_tokens.json` from a model folder.
    pub fn load(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let OrderedVocab(vocab) = read_json(&dir.join("vocab.json"))?;
        let config_path = dir.join("tokenizer_config.json");
        let config: TokenizerConfig = if config_path.exists() { read_json(&config_path)? } else { Default::default() };
        let added_path = dir.join("added_tokens.json");
        let added: HashMap<String, u32> = if added_path.exists() { read_json(&added_path)? } else { HashMap::new() };
        let mut decoder = Vec::new();
        for (id, spec) in &config.added_tokens_decoder {
            let id = id.parse::<u32>().map_err(|_| TtsError::Config {
                path: config_path.clone(),
                reason: format!("added_tokens_decoder key {id:?} is not an id"),
            })?;
            decoder.push((spec.content().to_owned(), id));
        }
        decoder.extend(added);
        decoder.sort_by_key(|(_, id)| *id);
        let mut tok = Self::new(
            vocab,
            config.pad_token.as_ref().map(TokenSpec::content).unwrap_or("<pad>"),
            config.unk_token.as_ref().map(TokenSpec::content).unwrap_or("<unk>"),
            decoder,
        );
        tok.add_blank = config.add_blank.unwrap_or(true);
        tok.normalize = config.normalize.unwrap_or(true);
        tok.phonemize = config.phonemize.unwrap_or(true);
        tok.is_uroman = config.is_uroman.unwrap_or(false);
        tok.language = config.language;
        Ok(tok)
    }

    /// A tokenizer from a vocabulary (in file order), the pad and unk tokens and the added tokens
    /// (`added_tokens_decoder`), with `VitsTokenizer`'s defaults (`add_blank`, `normalize`, `phonemize` on).
    ///
    /// Special tokens missing from both get the next free ids, unk first, as transformers assigns them.
    pub fn new(vocab: Vec<(String, u32)>, pad: &str, unk: &str, added: Vec<(String, u32)>) -> Self {
        let ids: HashMap<String, u32> = vocab.iter().cloned().collect();
        let mut special: Vec<(String, u32)> = added;
        let mut next =
            vocab.iter().map(|(_, id)| id + 1).chain(special.iter().map(|(_, id)| id + 1)).max().unwrap_or(0);
        for token in [unk, pad] {
            if token.is_empty() || special.iter().any(|(t, _)| t == token) {
                continue;
            }
            let id = match ids.get(token) {
                Some(&id) => id,
                None => {
                    next += 1;
                    next - 1
                }
            };
            special.push((token.to_owned(), id));
        }
        let lookup = |t: &str| special.iter().find(|(s, _)| s == t).map(|(_, id)| *id).or_else(|| ids.get(t).copied());
        let unk_id = lookup(unk);
        // the blank is whatever symbol has id 0, converted back to an id (transformers' _convert_id_to_token(0))
        let blank_id = vocab.iter().chain(special.iter()).find(|(_, id)| *id == 0).and_then(|(t, _)| lookup(t));
        Self {
            vocab,
            ids,
            special,
            unk_id,
            blank_id,
            add_blank: true,
            normalize: true,
            phonemize: true,
            language: None,
            is_uroman: false,
            espeak: Espeak::default(),
        }
    }

    /// The id of the unknown-symbol token, if it has one.
    pub fn unk_id(&self) -> Option<u32> {
        self.unk_id
    }

    /// The text the symbols are read from: `prepare_for_tokenization`'s result (lower-cased, phonemized or
    /// filtered as configured).
    pub fn prepare(&self, text: &str) -> Result<String> {
        let mut text = if self.normalize { self.normalize_text(text) } else { text.to_owned() };
        if self.language.as_deref() == Some("ron") {
            text = text.replace('ț', "ţ");
        }
        if self.is_uroman && !text.is_ascii() {
            tracing::warn!("text has non-Roman characters and this checkpoint expects uroman romanisation");
        }
        if self.phonemize {
            let phonemes = self.espeak.phonemize(&text)?;
            Ok(collapse_whitespace(&phonemes))
        } else if self.normalize {
            let kept: String =
                text.chars().filter(|c| self.ids.contains_key(c.encode_utf8(&mut [0; 4]) as &str)).collect();
            Ok(python_strip(&kept).to_owned())
        } else {
            Ok(text)
        }
    }

    /// The input ids of `text` (empty when nothing of it is left).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let prepared = self.prepare(text)?;
        self.symbols_to_ids(&prepared)
    }

    /// Ids of an already prepared text (phonemes, say): special tokens whole, other characters one by one, with
    /// the blank interspersed in each stretch between special tokens.
    pub fn symbols_to_ids(&self, prepared: &str) -> Result<Vec<u32>> {
        let mut ids = Vec::with_capacity(prepared.chars().count() * 2 + 1);
        for piece in self.split_special(prepared) {
            match piece {
                Piece::Special(id) => ids.push(id),
                Piece::Text(text) => {
                    if self.add_blank {
                        let blank = self
                            .blank_id
                            .ok_or_else(|| TtsError::Tokenizer("add_blank is set but no symbol has id 0".into()))?;
                        ids.push(blank);
                        for c in text.chars() {
                            ids.push(self.symbol_id(c)?);
                            ids.push(blank);
                        }
                    } else {
                        for c in text.chars() {
                            ids.push(self.symbol_id(c)?);
                        }
                    }
                }
            }
        }
        Ok(ids)
    }

    fn symbol_id(&self, c: char) -> Result<u32> {
        let s = c.encode_utf8(&mut [0; 4]).to_owned();
        if let Some((_, id)) = self.special.iter().find(|(t, _)| *t == s) {
            return Ok(*id);
        }
        if let Some(&id) = self.ids.get(&s) {
            return Ok(id);
        }
        self.unk_id.ok_or_else(|| TtsError::Tokenizer(format!("symbol {c:?} is not in the vocabulary")))
    }

    /// transformers' `normalize_text`: walk the text; where a vocabulary entry (or added token) starts, keep it as
    /// written (the first in file order wins), else lower-case one character.
    fn normalize_text(&self, text: &str) -> String {
        let mut by_first: HashMap<char, Vec<&str>> = HashMap::new();
        for word in self.vocab.iter().map(|(w, _)| w.as_str()).chain(self.special.iter().map(|(w, _)| w.as_str())) {
            if let Some(c) = word.chars().next() {
                by_first.entry(c).or_default().push(word);
            }
        }
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(c) = rest.chars().next() {
            if let Some(word) = by_first.get(&c).and_then(|words| words.iter().find(|w| rest.starts_with(**w))) {
                out.push_str(word);
                rest = &rest[word.len()..];
            } else {
                out.extend(c.to_lowercase());
                rest = &rest[c.len_utf8()..];
            }
        }
        out
    }

    /// Splits around special tokens, leftmost match first, longest first among those starting there.
    fn split_special<'a>(&self, text: &'a str) -> Vec<Piece<'a>> {
        let mut pieces = Vec::new();
        let mut start = 0;
        let mut i = 0;
        while i < text.len() {
            let rest = &text[i..];
            let found = self
                .special
                .iter()
                .filter(|(t, _)| !t.is_empty() && rest.starts_with(t.as_str()))
                .max_by_key(|(t, _)| t.len());
            match found {
                Some((t, id)) => {
                    if start < i {
                        pieces.push(Piece::Text(&text[start..i]));
                    }
                    pieces.push(Piece::Special(*id));
                    i += t.len();
                    start = i;
                }
                None => i += rest.chars().next().map_or(1, char::len_utf8),
            }
        }
        if start < text.len() {
            pieces.push(Piece::Text(&text[start..]));
        }
        pieces
    }
}

enum Piece<'a> {
    Special(u32),
    Text(&'a str),
}

/// `re.sub(r"\s+", " ", text)`.
fn collapse_whitespace(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_space = false;
    for c in text.chars() {
        if c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c) {
            if !in_space {
                out.push(' ');
            }
            in_space = true;
        } else {
            out.push(c);
            in_space = false;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> VitsTokenizer {
        let vocab = ["k", " ", "a", "b", "A"].iter().enumerate().map(|(i, s)| (s.to_string(), i as u32)).collect();
        let mut t = VitsTokenizer::new(vocab, "k", "<unk>", vec![]);
        t.phonemize = false;
        t
    }

    #[test]
    fn blanks_are_interspersed_and_special_tokens_stay_whole() {
        let t = tiny();
        assert_eq!(t.unk_id(), Some(5));
        assert_eq!(t.encode("ab").unwrap(), vec![0, 2, 0, 3, 0]);
        // the pad token "k" is special: it splits the text and gets no blanks of its own
        assert_eq!(t.encode("akb").unwrap(), vec![0, 2, 0, 0, 0, 3, 0]);
        assert_eq!(t.encode("").unwrap(), Vec::<u32>::new());
    }

    #[test]
    fn normalize_keeps_vocabulary_entries_and_drops_unknown_characters() {
        let t = tiny();
        // "A" is in the vocabulary, so it is not lower-cased; "B" is not, so it becomes "b"; "!" is dropped
        assert_eq!(t.prepare(" AB! ").unwrap(), "Ab");
        let mut raw = tiny();
        raw.normalize = false;
        assert_eq!(raw.encode("a!").unwrap(), vec![0, 2, 0, 5, 0]);
    }

    #[test]
    fn whitespace_runs_collapse() {
        assert_eq!(collapse_whitespace(" a \n\t b "), " a b ");
    }
}
