//! `advanced.scalingModifiers`: the composite metric, evaluated with the `evalexpr` crate.
//!
//! `model::keda::formula` checks the expr-lang formula and translates it; here it is
//! compiled once and evaluated per poll. A failed trigger is bound to evalexpr's empty value,
//! so `failed ?? 0` yields 0 while any arithmetic on it is an error (which then counts as a
//! failure of the composite metric, as in KEDA).

use evalexpr::{
    ContextWithMutableFunctions, ContextWithMutableVariables, DefaultNumericTypes, Function,
    HashMapContext, Node, Value,
};
use model::keda::{MetricType, ScalingModifiers, formula};

/// A compiled formula with its target.
#[derive(Debug, Clone)]
pub struct Modifiers {
    pub formula: String,
    node: Node<DefaultNumericTypes>,
    pub target: f64,
    pub activation_target: f64,
    pub metric_type: MetricType,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ModifierError {
    #[error("scalingModifiers.formula: {0}")]
    Formula(String),
    #[error("scalingModifiers.target: expected a number, got {0:?}")]
    Target(String),
    #[error("scalingModifiers.activationTarget: expected a number, got {0:?}")]
    ActivationTarget(String),
}

impl Modifiers {
    pub fn compile(sm: &ScalingModifiers, trigger_names: &[&str]) -> Result<Self, ModifierError> {
        let f = sm.formula.clone().unwrap_or_default();
        let translated = formula::translate(&f, trigger_names)
            .map_err(|e| ModifierError::Formula(e.to_string()))?;
        let node = evalexpr::build_operator_tree::<DefaultNumericTypes>(&translated)
            .map_err(|e| ModifierError::Formula(format!("{e} (in {translated:?})")))?;
        let t = sm.target.clone().unwrap_or_default();
        let target = t
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite() && *v > 0.0)
            .ok_or_else(|| ModifierError::Target(t.clone()))?;
        let activation_target = match &sm.activation_target {
            None => 0.0,
            Some(a) => a
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| ModifierError::ActivationTarget(a.clone()))?,
        };
        Ok(Modifiers {
            formula: f,
            node,
            target,
            activation_target,
            metric_type: sm.metric_type.unwrap_or_default(),
        })
    }

    /// Evaluate with each trigger's value (`None` = the trigger failed this poll).
    pub fn eval(&self, values: &[(&str, Option<f64>)]) -> Result<f64, String> {
        let mut ctx = HashMapContext::<DefaultNumericTypes>::new();
        for (name, v) in values {
            let value = match v {
                Some(v) => Value::Float(*v),
                None => Value::Empty,
            };
            ctx.set_value((*name).to_string(), value)
                .map_err(|e| e.to_string())?;
        }
        ctx.set_function(
            formula::COALESCE_FN.to_string(),
            Function::new(|arg| {
                let args = arg.as_tuple()?;
                match args.as_slice() {
                    [Value::Empty, b] => Ok(b.clone()),
                    [a, _] => Ok(a.clone()),
                    _ => Err(evalexpr::EvalexprError::WrongFunctionArgumentAmount {
                        expected: 2..=2,
                        actual: args.len(),
                    }),
                }
            }),
        )
        .map_err(|e| e.to_string())?;
        match self.node.eval_with_context(&ctx) {
            Ok(Value::Float(f)) if f.is_finite() => Ok(f),
            Ok(Value::Int(i)) => Ok(i as f64),
            Ok(Value::Float(f)) => Err(format!("formula {:?} evaluated to {f}", self.formula)),
            Ok(Value::Empty) => Err(format!(
                "formula {:?} depends on a failed trigger; use `name ?? default` to tolerate failures",
                self.formula
            )),
            Ok(other) => Err(format!(
                "formula {:?} evaluated to {other}, expected a number",
                self.formula
            )),
            Err(e) => Err(format!(
                "formula {:?} failed: {e} (a failed trigger needs `name ?? default`)",
                self.formula
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sm(f: &str) -> Modifiers {
        Modifiers::compile(
            &ScalingModifiers {
                formula: Some(f.into()),
                target: Some("2".into()),
                activation_target: None,
                metric_type: None,
            },
            &["a", "b"],
        )
        .unwrap()
    }

    #[test]
    fn arithmetic_is_floating_point() {
        assert_eq!(
            sm("a / b").eval(&[("a", Some(3.0)), ("b", Some(2.0))]),
            Ok(1.5)
        );
        assert_eq!(
            sm("(a + b) / 2").eval(&[("a", Some(3.0)), ("b", Some(2.0))]),
            Ok(2.5)
        );
        assert_eq!(
            sm("a ** 2").eval(&[("a", Some(3.0)), ("b", Some(0.0))]),
            Ok(9.0)
        );
    }

    #[test]
    fn coalesce_and_ternary() {
        let m = sm("(a ?? 7) + b");
        assert_eq!(m.eval(&[("a", None), ("b", Some(1.0))]), Ok(8.0));
        assert_eq!(m.eval(&[("a", Some(2.0)), ("b", Some(1.0))]), Ok(3.0));
        let m = sm("a > 5 ? a : b");
        assert_eq!(m.eval(&[("a", Some(6.0)), ("b", Some(1.0))]), Ok(6.0));
        assert_eq!(m.eval(&[("a", Some(4.0)), ("b", Some(1.0))]), Ok(1.0));
        assert_eq!(
            sm("min(a, b, 3)").eval(&[("a", Some(6.0)), ("b", Some(4.0))]),
            Ok(3.0)
        );
        assert_eq!(
            sm("abs(a - b)").eval(&[("a", Some(1.0)), ("b", Some(4.0))]),
            Ok(3.0)
        );
    }

    #[test]
    fn failed_trigger_without_coalesce_is_an_error() {
        assert!(sm("a + b").eval(&[("a", None), ("b", Some(1.0))]).is_err());
    }
}
