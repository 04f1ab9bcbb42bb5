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
pub use eval::{Ctx, Seg, Used};
pub use parse::{
    parse_condition, parse_condition_ctx, parse_projection, parse_projection_ctx, parse_update,
    parse_update_ctx,
};
