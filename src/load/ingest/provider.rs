//! Our provider ids (DESIGN §3.1) for the names sources give providers:
//! LiteLLM's `custom_llm_provider`, OpenTelemetry's `gen_ai.provider.name`
//! (or `gen_ai.system`), and a FOCUS row's provider, service, publisher and
//! product. One place, so that a provider is meant to get one id whichever
//! source names it.
//!
//! Not yet one vocabulary: [`NAMES`] says which source maps each name, and
//! each source keeps its own rule for names it does not list, because the
//! sources disagree and merging them would change ids. xAI is `xai` from
//! LiteLLM (and from a FOCUS `xAI`) but `x-ai` from OpenTelemetry; LiteLLM
//! maps `bedrock`, `azure` and `mistral` where OpenTelemetry passes them on
//! as they are; OpenTelemetry maps `aws.bedrock` and `gcp.vertex_ai` where
//! LiteLLM would keep the dots. Which id wins is a decision for the DESIGN.

/// A source of provider names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// LiteLLM `custom_llm_provider` (and `provider/` model prefixes).
    Litellm,
    /// OpenTelemetry GenAI `gen_ai.provider.name` / `gen_ai.system`.
    Otel,
}

use Source::{Litellm, Otel};

/// Provider names (lower case) as the sources write them, our id, and the
/// sources that map the name so. A name listed for one source only is
/// one the other source gives another id (see the module docs).
const NAMES: [(&str, &str, &[Source]); 21] = [
    ("openai", "openai", &[Litellm, Otel]),
    ("text-completion-openai", "openai", &[Litellm]),
    ("anthropic", "anthropic", &[Litellm, Otel]),
    ("anthropic_text", "anthropic", &[Litellm]),
    ("bedrock", "aws-bedrock", &[Litellm]),
    ("aws.bedrock", "aws-bedrock", &[Otel]),
    ("azure", "azure-openai", &[Litellm]),
    ("azure_text", "azure-openai", &[Litellm]),
    ("azure.ai.openai", "azure-openai", &[Otel]),
    ("az.ai.openai", "azure-openai", &[Otel]),
    ("azure.ai.inference", "azure-ai-inference", &[Otel]),
    ("az.ai.inference", "azure-ai-inference", &[Otel]),
    ("vertex_ai", "vertex-ai", &[Litellm, Otel]),
    ("vertex_ai_beta", "vertex-ai", &[Litellm]),
    ("gemini", "vertex-ai", &[Litellm, Otel]),
    ("gcp.vertex_ai", "vertex-ai", &[Otel]),
    ("gcp.gemini", "vertex-ai", &[Otel]),
    ("gcp.gen_ai", "vertex-ai", &[Otel]),
    ("mistral", "mistral-ai", &[Litellm]),
    ("xai", "x-ai", &[Otel]),
    ("x_ai", "x-ai", &[Litellm, Otel]),
];

/// Our id for a provider name from `source`: its [`NAMES`] entry, else
/// the name lower-cased with `-` for `_` (and for `.`, from OpenTelemetry).
pub(crate) fn provider_id(source: Source, name: &str) -> String {
    let id = name.trim().to_ascii_lowercase();
    if let Some((_, ours, _)) = NAMES
        .iter()
        .find(|(theirs, _, sources)| *theirs == id && sources.contains(&source))
    {
        return (*ours).to_string();
    }
    match source {
        Litellm => id.replace('_', "-"),
        Otel => id.replace(['.', '_'], "-"),
    }
}

/// The provider ids [`provider_of`] gives LLM services.
pub(crate) const LLM_PROVIDERS: [&str; 5] = [
    "aws-bedrock",
    "azure-openai",
    "vertex-ai",
    "openai",
    "anthropic",
];

/// Our provider id for a FOCUS row (DESIGN §3.1 ids). `product` is what
/// else the row says of its product: Microsoft bills Azure OpenAI as
/// service `Azure AI Services`, meter category `Cognitive Services`,
/// subcategory `Azure OpenAI`.
pub fn provider_of(provider_name: &str, service: &str, publisher: &str, product: &str) -> String {
    let p = provider_name.to_ascii_lowercase();
    let s = service.to_ascii_lowercase();
    let all = format!(
        "{p} {s} {} {}",
        publisher.to_ascii_lowercase(),
        product.to_ascii_lowercase()
    );
    if s.contains("bedrock") {
        "aws-bedrock".into()
    } else if (p.contains("microsoft") || p.contains("azure")) && all.contains("openai") {
        "azure-openai".into()
    } else if p.contains("google") && (s.contains("vertex") || s.contains("gemini")) {
        "vertex-ai".into()
    } else if p.contains("openai") {
        "openai".into()
    } else if p.contains("anthropic") {
        "anthropic".into()
    } else {
        p.split_whitespace().collect::<Vec<_>>().join("-")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_only_one_source_maps_is_left_to_the_others_rule() {
        assert_eq!(provider_id(Litellm, "bedrock"), "aws-bedrock");
        assert_eq!(provider_id(Otel, "bedrock"), "bedrock");
        assert_eq!(provider_id(Otel, "aws.bedrock"), "aws-bedrock");
        assert_eq!(provider_id(Litellm, "aws.bedrock"), "aws.bedrock");
        assert_eq!(provider_id(Otel, "xai"), "x-ai");
        assert_eq!(provider_id(Litellm, "xai"), "xai");
        assert_eq!(provider_id(Litellm, " Gemini "), "vertex-ai");
        assert_eq!(provider_id(Otel, "Gemini"), "vertex-ai");
    }
}
