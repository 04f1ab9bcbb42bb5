//! DynamoDB's expression language: condition, filter, key-condition, projection and update
//! expressions.
//!
//! # Layout
//! - [`ast`]: syntax trees with a `Display` that prints a re-parseable expression.
//! - [`parse`]: lexer and recursive-descent parser with AWS-like error messages.
//! - [`check`]: conditions as written, DynamoDB's checks on them, lowering into the AST.
//! - [`eval`]: evaluation against an item (conditions, projections, update actions).
//! - [`reserved`]: DynamoDB's reserved words.
//! - `update_check`: UpdateExpressions as written, DynamoDB's checks on them in its order.

pub mod ast;
pub mod check;
pub mod eval;
pub mod parse;
pub mod reserved;
mod update_check;

pub use ast::{CmpOp, Cond, Operand, Path, PathElem, Update};

/// Run a step of a recursive walk (parsing, checking, evaluating a condition) on a stack grown
/// when little is left: a condition may nest 300 levels (DynamoDB takes 300 operators), which
/// a debug build's frames would not fit in a 2 MiB thread stack.
pub(crate) fn deeper<T>(f: impl FnOnce() -> T) -> T {
    stacker::maybe_grow(64 * 1024, 1024 * 1024, f)
}
pub use eval::{Ctx, Seg, Used};
pub use parse::{
    parse_condition, parse_condition_ctx, parse_projection, parse_projection_ctx, parse_update,
    parse_update_ctx,
};
