//! Words for people, as data: a message is a catalogue key and named
//! arguments, never a sentence. Domain code returns messages (in errors and
//! notifications); each room's web side renders them in the reader's
//! language, so word order may differ between languages and nothing the
//! domain knows (an account id, a field name, an amount in fen) reaches a
//! person as it is.

use serde::{Deserialize, Serialize};

/// A value placed into a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "t", content = "v", rename_all = "snake_case")]
pub enum Arg {
    /// Shown as given: a name, a plate, a reference the person knows.
    Text(String),
    /// Money in fen, shown as yuan ("12.50").
    Fen(i64),
    /// A moment (epoch milliseconds), shown in China time.
    Time(i64),
    /// A whole number (a count, a limit, seconds).
    Int(i64),
    /// Another catalogue key, shown in the reader's language (a bill's kind, a role).
    Key(String),
}

/// A catalogue key with its named arguments (`{name}` in the text).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Msg {
    pub key: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<(String, Arg)>,
}

impl Msg {
    pub fn new(key: impl Into<String>) -> Msg {
        Msg { key: key.into(), args: Vec::new() }
    }

    pub fn arg(mut self, name: &str, value: Arg) -> Msg {
        self.args.push((name.to_string(), value));
        self
    }

    pub fn text(self, name: &str, v: impl Into<String>) -> Msg {
        self.arg(name, Arg::Text(v.into()))
    }

    pub fn fen(self, name: &str, v: i64) -> Msg {
        self.arg(name, Arg::Fen(v))
    }

    pub fn time(self, name: &str, ms: i64) -> Msg {
        self.arg(name, Arg::Time(ms))
    }

    pub fn int(self, name: &str, v: i64) -> Msg {
        self.arg(name, Arg::Int(v))
    }

    pub fn key_arg(self, name: &str, key: impl Into<String>) -> Msg {
        self.arg(name, Arg::Key(key.into()))
    }
}

impl std::fmt::Display for Msg {
    /// For logs: the key and its arguments, never shown to a person.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.key)?;
        for (k, v) in &self.args {
            match v {
                Arg::Text(s) | Arg::Key(s) => write!(f, " {k}={s:?}")?,
                Arg::Fen(n) | Arg::Time(n) | Arg::Int(n) => write!(f, " {k}={n}")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_round_trips_as_json() {
        let m = Msg::new("wallet.limit").fen("limit", 50_000).time("resets", 1).key_arg("kind", "bill.kind.fine");
        let j = serde_json::to_string(&m).unwrap();
        assert_eq!(serde_json::from_str::<Msg>(&j).unwrap(), m);
        assert_eq!(m.to_string(), "wallet.limit limit=50000 resets=1 kind=\"bill.kind.fine\"");
    }
}
