//! Our provider ids (DESIGN §3.1) for the names sources give providers:
//! LiteLLM's `custom_llm_provider`, OpenTelemetry's `gen_ai.provider.name`
//! (or `gen_ai.system`), and a FOCUS row's provider, service, publisher and
//! product. One vocabulary, so that a provider gets one id whichever source
//! names it — its usage in one source's logs must meet its bill.

/// Provider names (lower case) as LiteLLM and OpenTelemetry write them, and
/// our id. A name not listed keeps its own spelling, lower-cased, with `-`
/// for `_` and `.` (`mistral_ai` → `mistral-ai`).
const NAMES: [(&str, &str); 22] = [
    ("openai", "openai"),
    ("text-completion-openai", "openai"),
    ("anthropic", "anthropic"),
    ("anthropic_text", "anthropic"),
    ("bedrock", "aws-bedrock"),
    // LiteLLM's price map files Bedrock's Converse-API models apart.
    ("bedrock_converse", "aws-bedrock"),
    ("aws.bedrock", "aws-bedrock"),
    ("azure", "azure-openai"),
    ("azure_text", "azure-openai"),
    ("azure.ai.openai", "azure-openai"),
    ("az.ai.openai", "azure-openai"),
    ("azure.ai.inference", "azure-ai-inference"),
    ("az.ai.inference", "azure-ai-inference"),
    ("vertex_ai", "vertex-ai"),
    ("vertex_ai_beta", "vertex-ai"),
    ("gemini", "vertex-ai"),
    ("gcp.vertex_ai", "vertex-ai"),
    ("gcp.gemini", "vertex-ai"),
    ("gcp.gen_ai", "vertex-ai"),
    ("mistral", "mistral-ai"),
    // LiteLLM writes `xai`, OpenTelemetry `x_ai`; a FOCUS `xAI` is `xai`.
    ("xai", "xai"),
    ("x_ai", "xai"),
];

/// Our id for a provider name from a gateway log or LiteLLM's price map.
pub(crate) fn provider_id(name: &str) -> String {
    let id = name.trim().to_ascii_lowercase();
    // LiteLLM's price map files Vertex AI's models by family:
    // `vertex_ai-language-models`, `vertex_ai-anthropic_models`, … — one
    // provider, one bill.
    if id.starts_with("vertex_ai-") {
        return "vertex-ai".to_string();
    }
    match NAMES.iter().find(|(theirs, _)| *theirs == id) {
        Some((_, ours)) => (*ours).to_string(),
        None => id.replace(['.', '_'], "-"),
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
    fn every_source_spelling_of_a_provider_is_one_id() {
        for (names, id) in [
            (
                &["bedrock", "aws.bedrock", "Bedrock", "bedrock_converse"][..],
                "aws-bedrock",
            ),
            (
                &["azure", "az.ai.openai", "azure.ai.openai"][..],
                "azure-openai",
            ),
            (
                &[
                    "vertex_ai",
                    " Gemini ",
                    "gcp.vertex_ai",
                    "vertex_ai-anthropic_models",
                    "vertex_ai-language-models",
                ][..],
                "vertex-ai",
            ),
            (&["xai", "x_ai"][..], "xai"),
            (&["mistral", "mistral_ai"][..], "mistral-ai"),
            (&["together_ai", "together.ai"][..], "together-ai"),
        ] {
            for n in names {
                assert_eq!(provider_id(n), id, "{n}");
            }
        }
        // FOCUS names the same provider in its own words.
        assert_eq!(provider_of("xAI", "Grok", "", ""), provider_id("x_ai"));
    }
}
