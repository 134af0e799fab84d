//! Fuzzes what the gateway reads from outside: client requests in its three wire formats (and their
//! rendering for every provider kind), provider answers and stream events, and the SSE parser.
//! No input may panic; a request that parses must render for every provider.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rempart_config::gateway::ProviderKind;
use rempart_gateway::{anthropic, openai, responses, sse};

fuzz_target!(|data: &[u8]| {
    let mut parser = sse::Parser::default();
    let (a, b) = data.split_at(data.len() / 2);
    let _ = parser.feed(a);
    let _ = parser.feed(b);
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    let requests = [openai::parse_request(&v), anthropic::parse_request(&v), responses::parse_request(&v)];
    for req in requests.into_iter().flatten() {
        for kind in ["openai", "mistral", "vllm", "ollama", "llamacpp"] {
            let kind = ProviderKind::parse(kind).expect("known kind");
            let _ = openai::render_request(&req, kind, "m", true);
        }
        let _ = anthropic::render_request(&req, "m", true);
        let _ = responses::render_request(&req, "m", true);
    }
    let _ = responses::parse_response(&v);
    let _ = responses::EventReader::default().read(&v);
    let _ = openai::parse_response(&v);
    let _ = anthropic::parse_response(&v);
    let _ = openai::ChunkReader::default().read(&v);
    let _ = anthropic::EventReader::default().read(&v);
});
