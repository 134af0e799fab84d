//! `[gateway]`: the model providers, the routes clients ask for, the data-class policy and the
//! per-client quotas of the sovereignty gateway.

use std::collections::BTreeMap;
use std::path::PathBuf;

use rempart_model::DataClass;
use serde::Deserialize;

use crate::Problem;

/// The sovereignty gateway.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Gateway {
    /// Class of a request whose client and headers declare none.
    pub default_class: DataClass,
    /// The institution's own classification levels, each mapped to the TLP class it means.
    pub levels: BTreeMap<String, DataClass>,
    /// The highest class each jurisdiction may receive, whatever a provider declares.
    pub ceilings: BTreeMap<Jurisdiction, DataClass>,
    pub providers: Vec<Provider>,
    pub routes: Vec<Route>,
    /// Settings per client, by the name of its token.
    pub clients: BTreeMap<String, Client>,
    /// Settings of clients not named in `clients`.
    pub default_client: Client,
}

/// Where a provider processes data.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Jurisdiction {
    /// Inside the institution's own boundary.
    OnPrem,
    /// Inside the European Union, under EU law.
    Eu,
    /// A third country, by its ISO 3166-1 alpha-2 code in lower case (`us`, `ch`, `gb`).
    Country(String),
}

impl Jurisdiction {
    pub fn parse(s: &str) -> Option<Jurisdiction> {
        let s = s.trim().to_ascii_lowercase();
        match s.as_str() {
            "on-prem" => Some(Jurisdiction::OnPrem),
            "eu" => Some(Jurisdiction::Eu),
            c if c.len() == 2 && c.bytes().all(|b| b.is_ascii_lowercase()) => Some(Jurisdiction::Country(s)),
            _ => None,
        }
    }

    /// The highest class this jurisdiction may receive unless configured otherwise: everything
    /// on premises, up to TLP:AMBER in the EU, TLP:GREEN elsewhere.
    pub fn default_ceiling(&self) -> DataClass {
        match self {
            Jurisdiction::OnPrem => DataClass::Red,
            Jurisdiction::Eu => DataClass::Amber,
            Jurisdiction::Country(_) => DataClass::Green,
        }
    }
}

impl std::fmt::Display for Jurisdiction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Jurisdiction::OnPrem => f.write_str("on-prem"),
            Jurisdiction::Eu => f.write_str("eu"),
            Jurisdiction::Country(c) => f.write_str(c),
        }
    }
}

/// The wire format and quirks of a provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProviderKind {
    /// OpenAI Chat Completions.
    OpenAi,
    /// OpenAI's Responses API, with `store: false`.
    OpenAiResponses,
    /// Anthropic Messages.
    Anthropic,
    /// Mistral's OpenAI-compatible API (tool-call ids of 9 letters and digits).
    Mistral,
    /// vLLM's OpenAI-compatible server.
    Vllm,
    /// Ollama's OpenAI-compatible endpoint (no `tool_choice`).
    Ollama,
    /// llama.cpp's `llama-server`.
    LlamaCpp,
}

impl ProviderKind {
    pub const NAMES: &[&str] = &[
        "openai",
        "openai-responses",
        "anthropic",
        "mistral",
        "vllm",
        "ollama",
        "llamacpp",
    ];

    pub fn parse(s: &str) -> Option<ProviderKind> {
        Some(match s {
            "openai" => ProviderKind::OpenAi,
            "openai-responses" => ProviderKind::OpenAiResponses,
            "anthropic" => ProviderKind::Anthropic,
            "mistral" => ProviderKind::Mistral,
            "vllm" => ProviderKind::Vllm,
            "ollama" => ProviderKind::Ollama,
            "llamacpp" => ProviderKind::LlamaCpp,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::OpenAi => "openai",
            ProviderKind::OpenAiResponses => "openai-responses",
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::Mistral => "mistral",
            ProviderKind::Vllm => "vllm",
            ProviderKind::Ollama => "ollama",
            ProviderKind::LlamaCpp => "llamacpp",
        }
    }
}

/// Where a provider's API key is read from; never the key itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Secret {
    None,
    Env(String),
    File(PathBuf),
}

/// One model provider.
#[derive(Debug, Clone, PartialEq)]
pub struct Provider {
    pub name: String,
    pub kind: ProviderKind,
    /// The API's base, e.g. `https://api.openai.com/v1`.
    pub base_url: String,
    /// The provider's model name requests are sent with.
    pub model: String,
    pub api_key: Secret,
    pub jurisdiction: Jurisdiction,
    /// The highest class this provider may receive.
    pub max_class: DataClass,
    /// Whether personal data is pseudonymized before it reaches this provider. Only an
    /// on-premises provider may receive data in clear.
    pub pseudonymize: bool,
    /// How long the provider promises to keep what it receives (0: not at all); informative,
    /// recorded with each call.
    pub retention_days: Option<u32>,
    /// Purposes this provider may serve; empty: any.
    pub purposes: Vec<String>,
    /// Cut off (the export-control case): never called.
    pub revoked: bool,
    pub timeout_secs: u64,
    /// Retries of one request on a retryable error (429, 5xx, 529) before failing over.
    pub max_retries: u32,
    /// Longest `Retry-After` waited for; a longer one fails over at once.
    pub max_retry_after_secs: u64,
    /// Euros per million input and output tokens, for budgets.
    pub price_input_per_mtok: f64,
    pub price_output_per_mtok: f64,
    /// Extra CA certificates (PEM) to trust for this provider, e.g. an internal CA.
    pub ca_file: Option<PathBuf>,
    /// Consecutive failures that open the provider's circuit, and how long it then stays open.
    pub breaker_threshold: u32,
    pub breaker_cool_down_secs: u64,
}

/// A model name clients ask for (`rempart/NAME`), served by the first allowed, healthy provider
/// of its chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub name: String,
    pub purpose: String,
    pub chain: Vec<String>,
}

/// What one gateway client may do.
#[derive(Debug, Clone, PartialEq)]
pub struct Client {
    /// The least class of everything this client sends; a request may declare a higher one.
    pub class: Option<DataClass>,
    /// Routes the client may use; empty: all.
    pub routes: Vec<String>,
    pub requests_per_minute: u32,
    pub tokens_per_day: u64,
    /// Euros per day.
    pub budget_per_day: f64,
    /// Whether answers are re-identified for this client (it sent the originals itself).
    pub reidentify: bool,
}

impl Default for Client {
    fn default() -> Self {
        Client {
            class: None,
            routes: Vec::new(),
            requests_per_minute: 600,
            tokens_per_day: 5_000_000,
            budget_per_day: 100.0,
            reidentify: true,
        }
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawGateway {
    default_class: Option<String>,
    levels: Option<BTreeMap<String, String>>,
    ceilings: Option<BTreeMap<String, String>>,
    providers: Option<Vec<RawProvider>>,
    routes: Option<Vec<RawRoute>>,
    clients: Option<BTreeMap<String, RawClient>>,
    default_client: Option<RawClient>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProvider {
    name: String,
    kind: String,
    base_url: String,
    model: String,
    api_key_env: Option<String>,
    api_key_file: Option<PathBuf>,
    jurisdiction: String,
    max_class: String,
    pseudonymize: Option<bool>,
    retention_days: Option<i64>,
    purposes: Option<Vec<String>>,
    revoked: Option<bool>,
    timeout_secs: Option<i64>,
    max_retries: Option<i64>,
    max_retry_after_secs: Option<i64>,
    price_input_per_mtok: Option<f64>,
    price_output_per_mtok: Option<f64>,
    ca_file: Option<PathBuf>,
    breaker_threshold: Option<i64>,
    breaker_cool_down_secs: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    name: String,
    purpose: String,
    chain: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClient {
    class: Option<String>,
    routes: Option<Vec<String>>,
    requests_per_minute: Option<i64>,
    tokens_per_day: Option<i64>,
    budget_per_day: Option<f64>,
    reidentify: Option<bool>,
}

/// A name usable in a model id and in metrics: letters, digits, `.`, `_`, `-`.
fn is_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// A provider's base URL, parsed (never pattern-matched): whether it is https, and whether
/// its host is this machine. A user-info part (`user:pass@`) is refused: credentials go in
/// `api_key_env`, and `http://127.0.0.1@api.example/` names `api.example`, not this machine.
fn base_url(text: &str) -> Result<(bool, bool), String> {
    let url = url::Url::parse(text).map_err(|e| format!("`{text}` is not a URL: {e}"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err("holds a user-info part (`user@`): give credentials in `api_key_env`".into());
    }
    let https = match url.scheme() {
        "https" => true,
        "http" => false,
        other => return Err(format!("`{other}://` is not an http:// or https:// URL")),
    };
    let loopback = match url.host() {
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => a.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    };
    Ok((https, loopback))
}

struct Checker<'a> {
    problems: &'a mut Vec<Problem>,
}

impl Checker<'_> {
    fn problem(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem {
            path: path.into(),
            message: message.into(),
        });
    }

    fn class(&mut self, path: &str, s: &str, levels: &BTreeMap<String, DataClass>) -> Option<DataClass> {
        if let Some(c) = levels.get(s) {
            return Some(*c);
        }
        match s.parse() {
            Ok(c) => Some(c),
            Err(e) => {
                self.problem(path, format!("{e}, nor a level of `gateway.levels`"));
                None
            }
        }
    }

    fn bounded(&mut self, path: &str, v: Option<i64>, range: std::ops::RangeInclusive<i64>) -> Option<u64> {
        let v = v?;
        if range.contains(&v) {
            u64::try_from(v).ok()
        } else {
            self.problem(path, format!("{v} is outside {} to {}", range.start(), range.end()));
            None
        }
    }

    fn price(&mut self, path: &str, v: Option<f64>) -> f64 {
        match v {
            Some(p) if p.is_finite() && p >= 0.0 => p,
            Some(p) => {
                self.problem(path, format!("{p} is not a price (a number of euros, 0 or more)"));
                0.0
            }
            None => 0.0,
        }
    }

    fn client(&mut self, path: &str, raw: RawClient, levels: &BTreeMap<String, DataClass>) -> Client {
        let mut c = Client::default();
        if let Some(class) = &raw.class {
            c.class = self.class(&format!("{path}.class"), class, levels);
        }
        c.routes = raw.routes.unwrap_or_default();
        if let Some(n) = self.bounded(
            &format!("{path}.requests_per_minute"),
            raw.requests_per_minute,
            1..=1_000_000,
        ) {
            c.requests_per_minute = u32::try_from(n).unwrap_or(u32::MAX);
        }
        if let Some(n) = self.bounded(&format!("{path}.tokens_per_day"), raw.tokens_per_day, 1..=i64::MAX) {
            c.tokens_per_day = n;
        }
        if raw.budget_per_day.is_some() {
            c.budget_per_day = self.price(&format!("{path}.budget_per_day"), raw.budget_per_day);
        }
        c.reidentify = raw.reidentify.unwrap_or(true);
        c
    }
}

pub(crate) fn validate(raw: RawGateway, problems: &mut Vec<Problem>) -> Gateway {
    let mut ck = Checker { problems };
    let mut g = Gateway::default();
    for (label, class) in raw.levels.iter().flatten() {
        match class.parse::<DataClass>() {
            Ok(c) => {
                g.levels.insert(label.clone(), c);
            }
            Err(e) => ck.problem(format!("gateway.levels.{label}"), e.to_string()),
        }
    }
    if let Some(c) = &raw.default_class
        && let Some(c) = ck.class("gateway.default_class", c, &g.levels)
    {
        g.default_class = c;
    }
    for (j, class) in raw.ceilings.iter().flatten() {
        let path = format!("gateway.ceilings.{j}");
        match Jurisdiction::parse(j) {
            Some(j) => {
                if let Some(c) = ck.class(&path, class, &g.levels) {
                    g.ceilings.insert(j, c);
                }
            }
            None => ck.problem(
                path,
                "not a jurisdiction (`on-prem`, `eu`, or a two-letter country code)",
            ),
        }
    }
    for (i, p) in raw.providers.into_iter().flatten().enumerate() {
        let path = format!("gateway.providers[{i}]");
        if !is_name(&p.name) {
            ck.problem(
                format!("{path}.name"),
                format!("`{}` is not a name (letters, digits, `.`, `_`, `-`)", p.name),
            );
        }
        if g.providers.iter().any(|q: &Provider| q.name == p.name) {
            ck.problem(
                format!("{path}.name"),
                format!("provider `{}` is declared twice", p.name),
            );
        }
        let Some(kind) = ProviderKind::parse(&p.kind) else {
            ck.problem(
                format!("{path}.kind"),
                format!(
                    "`{}` is not a provider kind (expected one of {})",
                    p.kind,
                    ProviderKind::NAMES.join(", ")
                ),
            );
            continue;
        };
        let Some(jurisdiction) = Jurisdiction::parse(&p.jurisdiction) else {
            ck.problem(
                format!("{path}.jurisdiction"),
                format!(
                    "`{}` is not a jurisdiction (`on-prem`, `eu`, or a two-letter country code)",
                    p.jurisdiction
                ),
            );
            continue;
        };
        let Some(max_class) = ck.class(&format!("{path}.max_class"), &p.max_class, &g.levels) else {
            continue;
        };
        let base_url = p.base_url.trim_end_matches('/').to_owned();
        match self::base_url(&base_url) {
            Err(e) => ck.problem(format!("{path}.base_url"), e),
            Ok((false, loopback)) if jurisdiction != Jurisdiction::OnPrem && !loopback => ck.problem(
                format!("{path}.base_url"),
                "a provider outside the premises must be reached over https://",
            ),
            Ok(_) => {}
        }
        let pseudonymize = p.pseudonymize.unwrap_or(true);
        if !pseudonymize && jurisdiction != Jurisdiction::OnPrem {
            ck.problem(
                format!("{path}.pseudonymize"),
                "only an on-prem provider may receive personal data in clear",
            );
        }
        let api_key = match (p.api_key_env, p.api_key_file) {
            (Some(_), Some(_)) => {
                ck.problem(
                    format!("{path}.api_key_env"),
                    "give api_key_env or api_key_file, not both",
                );
                Secret::None
            }
            (Some(e), None) => Secret::Env(e),
            (None, Some(f)) => {
                if !f.is_file() {
                    ck.problem(
                        format!("{path}.api_key_file"),
                        format!("file `{}` does not exist", f.display()),
                    );
                }
                Secret::File(f)
            }
            (None, None) => Secret::None,
        };
        if let Some(f) = &p.ca_file
            && !f.is_file()
        {
            ck.problem(
                format!("{path}.ca_file"),
                format!("file `{}` does not exist", f.display()),
            );
        }
        let price_input_per_mtok = ck.price(&format!("{path}.price_input_per_mtok"), p.price_input_per_mtok);
        let price_output_per_mtok = ck.price(&format!("{path}.price_output_per_mtok"), p.price_output_per_mtok);
        g.providers.push(Provider {
            name: p.name,
            kind,
            base_url,
            model: p.model,
            api_key,
            jurisdiction,
            max_class,
            pseudonymize,
            retention_days: ck
                .bounded(&format!("{path}.retention_days"), p.retention_days, 0..=36_500)
                .and_then(|d| u32::try_from(d).ok()),
            purposes: p.purposes.unwrap_or_default(),
            revoked: p.revoked.unwrap_or(false),
            timeout_secs: ck
                .bounded(&format!("{path}.timeout_secs"), p.timeout_secs, 1..=3_600)
                .unwrap_or(120),
            max_retries: ck
                .bounded(&format!("{path}.max_retries"), p.max_retries, 0..=10)
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(2),
            max_retry_after_secs: ck
                .bounded(&format!("{path}.max_retry_after_secs"), p.max_retry_after_secs, 0..=600)
                .unwrap_or(10),
            price_input_per_mtok,
            price_output_per_mtok,
            ca_file: p.ca_file,
            breaker_threshold: ck
                .bounded(&format!("{path}.breaker_threshold"), p.breaker_threshold, 1..=1000)
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(5),
            breaker_cool_down_secs: ck
                .bounded(
                    &format!("{path}.breaker_cool_down_secs"),
                    p.breaker_cool_down_secs,
                    1..=3600,
                )
                .unwrap_or(30),
        });
    }
    for (i, r) in raw.routes.into_iter().flatten().enumerate() {
        let path = format!("gateway.routes[{i}]");
        if !is_name(&r.name) {
            ck.problem(
                format!("{path}.name"),
                format!("`{}` is not a name (letters, digits, `.`, `_`, `-`)", r.name),
            );
        }
        if g.routes.iter().any(|q| q.name == r.name) {
            ck.problem(format!("{path}.name"), format!("route `{}` is declared twice", r.name));
        }
        if r.chain.is_empty() {
            ck.problem(format!("{path}.chain"), "a route needs at least one provider");
        }
        for (j, name) in r.chain.iter().enumerate() {
            if !g.providers.iter().any(|p| &p.name == name) {
                ck.problem(format!("{path}.chain[{j}]"), format!("no provider is named `{name}`"));
            }
        }
        g.routes.push(Route {
            name: r.name,
            purpose: r.purpose,
            chain: r.chain,
        });
    }
    let levels = g.levels.clone();
    if let Some(c) = raw.default_client {
        g.default_client = ck.client("gateway.default_client", c, &levels);
    }
    for (name, c) in raw.clients.into_iter().flatten() {
        let client = ck.client(&format!("gateway.clients.{name}"), c, &levels);
        for (j, r) in client.routes.iter().enumerate() {
            if !g.routes.iter().any(|q| &q.name == r) {
                ck.problem(
                    format!("gateway.clients.{name}.routes[{j}]"),
                    format!("no route is named `{r}`"),
                );
            }
        }
        g.clients.insert(name, client);
    }
    g
}

impl Gateway {
    /// The highest class `jurisdiction` may receive.
    pub fn ceiling(&self, jurisdiction: &Jurisdiction) -> DataClass {
        self.ceilings
            .get(jurisdiction)
            .copied()
            .unwrap_or_else(|| jurisdiction.default_ceiling())
    }

    /// A class named by a TLP label or one of the institution's levels.
    pub fn class(&self, label: &str) -> Option<DataClass> {
        self.levels.get(label).copied().or_else(|| label.parse().ok())
    }

    /// The settings of the client whose token is named `token_name`.
    pub fn client(&self, token_name: &str) -> &Client {
        self.clients.get(token_name).unwrap_or(&self.default_client)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use crate::Config;

    fn provider(base_url: &str, jurisdiction: &str) -> Result<Config, String> {
        Config::parse(
            &format!(
                "version = 1\n[gateway]\ndefault_class = \"TLP:GREEN\"\n[[gateway.providers]]\nname = \"p\"\nkind = \"openai\"\n\
                 base_url = \"{base_url}\"\nmodel = \"m\"\njurisdiction = \"{jurisdiction}\"\nmax_class = \"TLP:GREEN\"\n\
                 [[gateway.routes]]\nname = \"r\"\npurpose = \"triage\"\nchain = [\"p\"]\n"
            ),
            "t.toml",
        )
        .map_err(|e| e.to_string())
    }

    /// Provider addresses are parsed, never pattern-matched: a user-info part is refused, and
    /// "this machine" is judged on the parsed host.
    #[test]
    fn provider_urls_are_judged_on_their_parsed_host() {
        for ok in [
            ("https://api.example/v1", "us"),
            ("http://127.0.0.1:8000/v1", "us"),
            ("http://127.5.6.7/v1", "eu"),
            ("http://[::1]:11434/v1", "us"),
            ("http://LOCALHOST:8080/v1", "eu"),
            ("http://vllm.soc.internal:8000/v1", "on-prem"),
        ] {
            provider(ok.0, ok.1).unwrap_or_else(|e| panic!("{ok:?}: {e}"));
        }
        for (bad, jurisdiction, expect) in [
            ("http://127.0.0.1@api.example/v1", "us", "user-info"),
            ("https://user:secret@api.example/v1", "us", "user-info"),
            ("http://127.0.0.1.api.example/v1", "us", "over https://"),
            ("http://localhost.api.example/v1", "eu", "over https://"),
            ("http://api.example/v1", "eu", "over https://"),
            ("ftp://api.example/v1", "on-prem", "not an http:// or https:// URL"),
            ("api.example/v1", "us", "is not a URL"),
        ] {
            let err = provider(bad, jurisdiction).unwrap_err();
            assert!(
                err.contains("gateway.providers[0].base_url") && err.contains(expect),
                "{bad}: {err}"
            );
            assert!(!err.contains("secret"), "the password is not repeated: {err}");
        }
    }
}
