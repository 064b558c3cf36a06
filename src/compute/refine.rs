//! Bill lines cut by the provider's own usage reports: reconciliation
//! input, not ingest (the reports are read in `load::ingest::usage_report`).
//!
//! Cost exports are coarser than usage: OpenAI costs name a project and a
//! day but no model, and Anthropic's cost report names model and token
//! class but no quantity. Given the provider's usage of the same day and
//! scope, [`refine`] cuts each such cost line into one line per model and
//! token class, weighted by catalog cost (exactly: the parts sum to the
//! line), each with the provider's token count. The reconciliation then
//! measures the logs against what the provider counted, so tokens the
//! gateway never logged stay unattributed instead of being charged to
//! whoever happened to log something that day.
//!
//! A report grouped without `model` can only give quantities to lines that
//! already name their model; lines it cannot refine are left as they are.

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;

use crate::catalog::{Catalog, UsageType};
use crate::fx::Converted;
use crate::load::ingest::BilledLine;
use crate::load::ingest::usage_report::ReportedUsage;
use crate::money::{Decimal, split_exact};

/// The bill with each coarse usage line cut by the provider's own usage of
/// its scope and day (see the module docs). Lines that state their
/// quantity, that name a model the catalog does not know, or that no
/// reported usage matches, are kept as they are.
pub fn refine(
    lines: Vec<BilledLine>,
    usage: &[ReportedUsage],
    catalog: &Catalog,
) -> Vec<BilledLine> {
    if usage.is_empty() {
        return lines;
    }
    let mut by_day: HashMap<(&str, NaiveDate), Vec<&ReportedUsage>> = HashMap::new();
    for u in usage {
        by_day
            .entry((u.provider.as_str(), u.day))
            .or_default()
            .push(u);
    }
    let mut out = Vec::with_capacity(lines.len());
    for line in lines {
        let unknown_model = line.model.is_none() && line.model_raw.is_some();
        if !line.is_usage() || line.quantity.is_some() || unknown_model {
            out.push(line);
            continue;
        }
        // Tokens per (model, class) of the usage this line paid for.
        let mut groups: BTreeMap<(Option<String>, UsageType), u64> = BTreeMap::new();
        for u in by_day
            .get(&(line.provider.as_str(), line.day))
            .into_iter()
            .flatten()
        {
            let scope_ok = line.scope.is_empty() || u.scope == line.scope;
            let model_ok = line.model.is_none() || u.model == line.model;
            let type_ok = line.usage_type.is_none_or(|t| t == u.usage_type);
            if scope_ok && model_ok && type_ok {
                *groups.entry((u.model.clone(), u.usage_type)).or_default() += u.tokens;
            }
        }
        if groups.is_empty() {
            out.push(line);
            continue;
        }
        if let (Some(_), Some(_)) = (&line.model, line.usage_type) {
            let tokens: u64 = groups.values().sum();
            out.push(BilledLine {
                quantity: Some(Decimal::from(tokens)),
                ..line
            });
            continue;
        }
        // Cut by catalog cost; only when every part can be priced.
        let weights: Option<Vec<Decimal>> = groups
            .iter()
            .map(|((model, t), tokens)| {
                let p = catalog.prices_on(&line.provider, model.as_deref()?, line.day)?;
                Some(p.cost(*t, *tokens))
            })
            .collect();
        let Some((weights, parts)) =
            weights.and_then(|w| split_exact(line.cost, &w).map(|p| (w, p)))
        else {
            out.push(line);
            continue;
        };
        // A converted line's amount as billed is cut alike, so that its
        // parts still add up to what the bill stated.
        let billed: Vec<Option<Box<Converted>>> = match &line.fx {
            Some(c) => match split_exact(c.cost, &weights) {
                Some(costs) => costs
                    .into_iter()
                    .map(|cost| {
                        Some(Box::new(Converted {
                            cost,
                            rate: c.rate.clone(),
                        }))
                    })
                    .collect(),
                None => vec![None; parts.len()],
            },
            None => vec![None; parts.len()],
        };
        for ((((model, t), tokens), cost), fx) in groups.into_iter().zip(parts).zip(billed) {
            out.push(BilledLine {
                model: model.clone(),
                model_raw: line.model_raw.clone().or(model),
                usage_type: Some(t),
                quantity: Some(Decimal::from(tokens)),
                cost,
                fx,
                ..line.clone()
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::ingest::ChargeCategory;

    fn catalog() -> Catalog {
        Catalog::parse(
            r#"{"currency": "USD", "models": [
                {"provider": "openai", "model": "gpt-4o", "tier": "general",
                 "aliases": ["gpt-4o-2024-08-06"],
                 "prices": [{"effective_from": "2024-01-01", "input": "2.50", "cached_input": "1.25", "output": "10.00"}]},
                {"provider": "openai", "model": "gpt-4o-mini", "tier": "throughput",
                 "prices": [{"effective_from": "2024-01-01", "input": "0.15", "cached_input": "0.075", "output": "0.60"}]}
            ]}"#,
            "memory://catalog.json",
        )
        .unwrap()
    }

    fn day() -> NaiveDate {
        NaiveDate::from_ymd_opt(2025, 4, 2).unwrap()
    }

    fn cost_line(scope: &str, cost: &str) -> BilledLine {
        BilledLine {
            provider: "openai".into(),
            scope: scope.into(),
            day: day(),
            model: None,
            model_raw: None,
            usage_type: None,
            quantity: None,
            cost: cost.parse().unwrap(),
            currency: "USD".into(),
            fx: None,
            category: ChargeCategory::Usage,
            correction: false,
            description: None,
            source: "memory://costs.json".into(),
            row: 1,
        }
    }

    /// What `load::ingest::usage_report` reads from one OpenAI usage page:
    /// gpt-4o 1M input of which 0.2M cached, 0.1M output; gpt-4o-mini 2M
    /// input; project `proj_a`, 2025-04-02.
    fn usage() -> Vec<ReportedUsage> {
        let u = |model: &str, usage_type, tokens| ReportedUsage {
            provider: "openai".into(),
            scope: "proj_a".into(),
            day: day(),
            model: Some(model.into()),
            usage_type,
            tokens,
        };
        vec![
            u("gpt-4o", UsageType::Input, 800_000),
            u("gpt-4o", UsageType::CachedInput, 200_000),
            u("gpt-4o", UsageType::Output, 100_000),
            u("gpt-4o-mini", UsageType::Input, 2_000_000),
        ]
    }

    #[test]
    fn a_cost_line_is_cut_by_model_and_class_at_catalog_cost() {
        // Catalog cost: gpt-4o 0.8M×2.50 + 0.2M×1.25 + 0.1M×10 = 2.00 + 0.25 + 1.00;
        // gpt-4o-mini 2M×0.15 = 0.30; total 3.55. The bill says 3.55 × 0.9.
        let lines = refine(vec![cost_line("proj_a", "3.195")], &usage(), &catalog());
        let got: Vec<(String, UsageType, String, String)> = lines
            .iter()
            .map(|l| {
                (
                    l.model.clone().unwrap(),
                    l.usage_type.unwrap(),
                    l.quantity.unwrap().to_string(),
                    l.cost.normalize().to_string(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (
                    "gpt-4o".into(),
                    UsageType::Input,
                    "800000".into(),
                    "1.8".into()
                ),
                (
                    "gpt-4o".into(),
                    UsageType::CachedInput,
                    "200000".into(),
                    "0.225".into()
                ),
                (
                    "gpt-4o".into(),
                    UsageType::Output,
                    "100000".into(),
                    "0.9".into()
                ),
                (
                    "gpt-4o-mini".into(),
                    UsageType::Input,
                    "2000000".into(),
                    "0.27".into()
                ),
            ]
        );
        let sum: Decimal = lines.iter().map(|l| l.cost).sum();
        assert_eq!(sum, "3.195".parse::<Decimal>().unwrap());
    }

    #[test]
    fn lines_of_other_scopes_or_with_quantities_are_kept() {
        let other = cost_line("proj_b", "1.00");
        let mut counted = cost_line("proj_a", "1.00");
        counted.quantity = Some(Decimal::from(5u64));
        let lines = refine(vec![other.clone(), counted.clone()], &usage(), &catalog());
        assert_eq!(lines, [other, counted]);
    }

    #[test]
    fn a_line_with_model_and_class_gets_the_reported_quantity() {
        let mut line = cost_line("proj_a", "1.00");
        line.model = Some("gpt-4o".into());
        line.usage_type = Some(UsageType::Output);
        let lines = refine(vec![line], &usage(), &catalog());
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].quantity, Some(Decimal::from(100_000u64)));
        assert_eq!(lines[0].cost, "1.00".parse::<Decimal>().unwrap());
    }
}
