//! The message the producer sends and the consumer stores: one payment transaction.
//!
//! Wire format (the SQS message body), a JSON object:
//! ```json
//! {"transaction_id":"5f0c8a4e-…","account":"acct-0042","amount":"123.45",
//!  "currency":"EUR","created_at":1764354016123}
//! ```
//! - `amount` is a decimal *string*: JSON numbers are binary floats in most parsers and a
//!   payment amount must survive the trip to DynamoDB's exact `N` type unchanged.
//! - `created_at` is milliseconds since the Unix epoch when the producer built the message;
//!   the consumer copies it into the item so `written_at - created_at` is the end-to-end
//!   latency (send → durable item), which the local twin reports.
//!
//! Unknown fields are accepted and ignored, so a newer producer can add fields without turning
//! every message into a poison message for older consumers.

use clock::Timestamp;
use rand::Rng;
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

/// One transaction; see the module docs for the wire format.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transaction {
    pub transaction_id: String,
    pub account: String,
    pub amount: String,
    pub currency: String,
    pub created_at: u64,
}

/// Why a message body is not a transaction (the message is poison).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a transaction: {0}")]
pub struct InvalidTransaction(pub String);

impl Transaction {
    /// Parses and validates a message body.
    pub fn parse(body: &str) -> Result<Transaction, InvalidTransaction> {
        let t: Transaction =
            serde_json::from_str(body).map_err(|e| InvalidTransaction(e.to_string()))?;
        t.validate()?;
        Ok(t)
    }

    /// The checks that make a transaction safe to store: a usable key and an exact amount.
    pub fn validate(&self) -> Result<(), InvalidTransaction> {
        let bad = |m: String| Err(InvalidTransaction(m));
        // 128 printable ASCII characters is what a FIFO MessageDeduplicationId allows, and
        // the producer uses the transaction id as that id.
        if self.transaction_id.is_empty()
            || self.transaction_id.len() > 128
            || !self.transaction_id.bytes().all(|b| b.is_ascii_graphic())
        {
            return bad(format!(
                "transaction_id {:?} must be 1–128 printable ASCII characters",
                self.transaction_id
            ));
        }
        if self.account.is_empty() || self.account.len() > 256 {
            return bad(format!(
                "account {:?} must be 1–256 characters",
                self.account
            ));
        }
        if !is_decimal(&self.amount) {
            return bad(format!(
                "amount {:?} must be a decimal string like \"12.34\"",
                self.amount
            ));
        }
        if self.currency.len() != 3 || !self.currency.bytes().all(|b| b.is_ascii_uppercase()) {
            return bad(format!(
                "currency {:?} must be a three-letter ISO 4217 code",
                self.currency
            ));
        }
        if self.created_at == 0 {
            return bad("created_at must be milliseconds since the Unix epoch".into());
        }
        Ok(())
    }

    /// The message body.
    pub fn to_json(&self) -> String {
        // Serialising a struct of strings and integers cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// `-?digits[.digits]`, at most 38 significant digits (DynamoDB's `N` precision).
fn is_decimal(s: &str) -> bool {
    let digits = s.strip_prefix('-').unwrap_or(s);
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let all_digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    !int.is_empty()
        && all_digits(int)
        && all_digits(frac)
        && !(digits.contains('.') && frac.is_empty())
        && int.len() + frac.len() <= 38
}

/// Makes transactions; deterministic for a given seed (ids, accounts, amounts, currencies).
#[derive(Debug)]
pub struct Generator {
    rng: StdRng,
    accounts: u32,
    currencies: Vec<String>,
}

impl Generator {
    /// `seed: None` draws a seed from the OS so concurrent producers never collide on ids.
    pub fn new(seed: Option<u64>, accounts: u32, currencies: Vec<String>) -> Generator {
        let rng = match seed {
            Some(s) => StdRng::seed_from_u64(s),
            None => StdRng::from_os_rng(),
        };
        let currencies = if currencies.is_empty() {
            vec!["USD".to_string()]
        } else {
            currencies
        };
        Generator {
            rng,
            accounts: accounts.max(1),
            currencies,
        }
    }

    /// The next transaction, stamped `created_at = now`.
    pub fn next(&mut self, now: Timestamp) -> Transaction {
        let id: u128 = self.rng.random();
        // Shaped like a version-4 UUID so it reads like the ids real systems use.
        let id = (id & !(0xF_u128 << 76)) | (0x4 << 76);
        let id = (id & !(0x3_u128 << 62)) | (0x2 << 62);
        let h = format!("{id:032x}");
        let cents: u64 = self.rng.random_range(1..=1_000_000);
        let account = self.rng.random_range(0..self.accounts);
        let currency = self.currencies[self.rng.random_range(0..self.currencies.len())].clone();
        Transaction {
            transaction_id: format!(
                "{}-{}-{}-{}-{}",
                &h[0..8],
                &h[8..12],
                &h[12..16],
                &h[16..20],
                &h[20..32]
            ),
            account: format!("acct-{account:04}"),
            amount: format!("{}.{:02}", cents / 100, cents % 100),
            currency,
            created_at: now.as_millis().max(1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_transactions_round_trip_and_are_deterministic_per_seed() {
        let cur = vec!["USD".to_string(), "EUR".to_string()];
        let mut a = Generator::new(Some(7), 10, cur.clone());
        let mut b = Generator::new(Some(7), 10, cur.clone());
        let mut c = Generator::new(Some(8), 10, cur);
        let now = Timestamp::from_secs(1_764_354_016);
        let ta: Vec<_> = (0..50).map(|_| a.next(now)).collect();
        let tb: Vec<_> = (0..50).map(|_| b.next(now)).collect();
        assert_eq!(ta, tb);
        assert_ne!(ta[0], c.next(now));
        for t in &ta {
            assert_eq!(Transaction::parse(&t.to_json()).as_ref(), Ok(t));
            assert_eq!(t.transaction_id.len(), 36);
            assert_eq!(&t.transaction_id[14..15], "4", "{}", t.transaction_id);
        }
        let ids: std::collections::HashSet<_> = ta.iter().map(|t| &t.transaction_id).collect();
        assert_eq!(ids.len(), 50);
    }

    #[test]
    fn poison_bodies_are_rejected_with_a_reason() {
        let ok = r#"{"transaction_id":"t1","account":"a","amount":"1.50","currency":"EUR","created_at":5,"extra":true}"#;
        assert!(Transaction::parse(ok).is_ok());
        for (body, why) in [
            ("not json", "expected"),
            (r#"{"transaction_id":"t1"}"#, "missing field"),
            (
                r#"{"transaction_id":"","account":"a","amount":"1","currency":"EUR","created_at":5}"#,
                "transaction_id",
            ),
            (
                r#"{"transaction_id":"t","account":"a","amount":"1.","currency":"EUR","created_at":5}"#,
                "amount",
            ),
            (
                r#"{"transaction_id":"t","account":"a","amount":"1e5","currency":"EUR","created_at":5}"#,
                "amount",
            ),
            (
                r#"{"transaction_id":"t","account":"a","amount":1.5,"currency":"EUR","created_at":5}"#,
                "invalid type",
            ),
            (
                r#"{"transaction_id":"t","account":"a","amount":"2","currency":"eur","created_at":5}"#,
                "currency",
            ),
        ] {
            let err = Transaction::parse(body).expect_err(body);
            assert!(err.0.contains(why), "{body}: {err}");
        }
        assert!(is_decimal("-0.5") && is_decimal("12") && !is_decimal("-") && !is_decimal(".5"));
    }
}
