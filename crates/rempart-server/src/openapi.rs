//! The OpenAPI 3.1 description of the API, served at `/openapi.json`. A test checks that
//! every route the router serves is described here, and nothing else.

/// The OpenAPI document.
pub const OPENAPI: &str = r##"{
  "openapi": "3.1.0",
  "info": {
    "title": "Rempart API",
    "version": "0.1.0",
    "description": "Sovereign, auditable AI security operations. Every endpoint except /healthz and /readyz requires `Authorization: Bearer <token>` with a role that grants it: admin grants every role; analyst and approver grant viewer; auditor grants only the audit endpoints."
  },
  "components": {
    "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
    "schemas": {
      "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "object", "required": ["code", "message"], "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}}},
      "Normalized": {"type": "object", "properties": {
        "host": {"type": "string"}, "user": {"type": "string"}, "user_domain": {"type": "string"},
        "src_ip": {"type": "string"}, "src_port": {"type": "integer"}, "dst_ip": {"type": "string"}, "dst_port": {"type": "integer"},
        "protocol": {"type": "string"}, "process": {"type": "string"}, "process_id": {"type": "integer"}, "command_line": {"type": "string"},
        "parent_process": {"type": "string"}, "parent_process_id": {"type": "integer"}, "parent_command_line": {"type": "string"},
        "event_id": {"type": "integer"}, "channel": {"type": "string"}, "provider": {"type": "string"},
        "severity": {"enum": ["info", "low", "medium", "high", "critical"]}, "message": {"type": "string"}}},
      "Event": {"type": "object", "required": ["id", "time", "ingested", "format", "origin", "class", "normalized", "fields"], "properties": {
        "id": {"type": "string", "format": "uuid"},
        "time": {"type": "string", "format": "date-time"},
        "ingested": {"type": "string", "format": "date-time"},
        "format": {"enum": ["json", "syslog-5424", "syslog-3164", "cef", "evtx", "windows-json", "suricata-eve", "zeek-tsv", "zeek-json", "auditd"]},
        "origin": {"type": "object", "properties": {"source": {"type": "string"}, "location": {"type": "string"}}},
        "class": {"enum": ["clear", "green", "amber", "amber-strict", "red"]},
        "normalized": {"$ref": "#/components/schemas/Normalized"},
        "fields": {"type": "object", "description": "The original fields, verbatim."}}},
      "LedgerRecord": {"type": "object", "required": ["seq", "time", "actor", "kind", "payload_hash", "prev_hash", "leaf_hash", "status"], "properties": {
        "seq": {"type": "integer"}, "time": {"type": "string", "format": "date-time"}, "actor": {"type": "string"}, "kind": {"type": "string"},
        "key_id": {"type": ["string", "null"]}, "payload_hash": {"type": "string"}, "prev_hash": {"type": "string"}, "leaf_hash": {"type": "string"},
        "status": {"enum": ["public", "sealed", "erased", "pruned"]}, "payload": {"description": "The payload, or null when erased or pruned"}}},
      "Alert": {"type": "object", "required": ["id", "time", "created", "rule_title", "tags", "event"], "properties": {
        "id": {"type": "string", "format": "uuid"}, "time": {"type": "string", "format": "date-time"}, "created": {"type": "string", "format": "date-time"},
        "rule_id": {"type": "string"}, "rule_title": {"type": "string"}, "level": {"type": "string"}, "tags": {"type": "array", "items": {"type": "string"}},
        "matched": {"type": "array", "description": "The fields and values that matched (a correlation: its group and count; an indicator: the matched values)", "items": {"type": "object", "properties": {"field": {"type": "string"}, "value": {"type": "string"}}}},
        "event": {"type": "string", "format": "uuid", "description": "The matched event: GET /api/v1/events/{id}"}, "host": {"type": "string"}, "user": {"type": "string"}}},
      "Token": {"type": "object", "properties": {"id": {"type": "string"}, "name": {"type": "string"}, "role": {"enum": ["viewer", "analyst", "approver", "admin", "ingest", "gateway-client", "auditor"]}, "created": {"type": "string", "format": "date-time"}, "revoked": {"type": "boolean"}}}
    },
    "responses": {
      "Unauthenticated": {"description": "No valid token", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
      "Forbidden": {"description": "The token's role does not grant this", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
      "BadRequest": {"description": "Invalid parameters", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    }
  },
  "security": [{"bearer": []}],
  "paths": {
    "/healthz": {"get": {"summary": "Liveness", "security": [], "responses": {"200": {"description": "Alive"}}}},
    "/readyz": {"get": {"summary": "Readiness: the store answers", "security": [], "responses": {"200": {"description": "Ready"}, "503": {"description": "Store unavailable"}}}},
    "/metrics": {"get": {"summary": "Prometheus metrics (role viewer)", "responses": {"200": {"description": "OpenMetrics text"}, "401": {"$ref": "#/components/responses/Unauthenticated"}, "403": {"$ref": "#/components/responses/Forbidden"}}}},
    "/openapi.json": {"get": {"summary": "This document (role viewer)", "responses": {"200": {"description": "OpenAPI 3.1"}, "401": {"$ref": "#/components/responses/Unauthenticated"}}}},
    "/api/v1/events": {
      "post": {
        "summary": "Ingest events (role ingest). Acknowledged only once every event is durable.",
        "parameters": [
          {"name": "format", "in": "query", "schema": {"type": "string"}, "description": "Force a format instead of detecting it"},
          {"name": "source", "in": "query", "schema": {"type": "string", "maxLength": 256}, "description": "Source name recorded on each event (default http)"},
          {"name": "Content-Encoding", "in": "header", "schema": {"enum": ["identity", "gzip"]}, "description": "gzip bodies are inflated up to a cap (256 MiB by default)"}
        ],
        "requestBody": {"required": true, "description": "NDJSON, a JSON array, syslog lines, CEF, Zeek TSV, auditd, or an EVTX file; capped by server.max_body_bytes", "content": {"application/x-ndjson": {}, "application/json": {}, "text/plain": {}, "application/octet-stream": {}}},
        "responses": {
          "200": {"description": "Stored; undecodable parts quarantined", "content": {"application/json": {"schema": {"type": "object", "properties": {"accepted": {"type": "integer"}, "rejected": {"type": "integer"}, "alerts": {"type": "integer"}, "by_format": {"type": "object"}, "rejections": {"type": "array", "items": {"type": "object", "properties": {"location": {"type": "string"}, "reason": {"type": "string"}}}}}}}}},
          "413": {"description": "Body larger than the configured cap, or a gzip body inflating past its cap"},
          "415": {"description": "Content-Encoding other than gzip or identity"},
          "422": {"description": "Nothing in the body could be decoded; all of it was quarantined"},
          "400": {"$ref": "#/components/responses/BadRequest"}, "401": {"$ref": "#/components/responses/Unauthenticated"}, "403": {"$ref": "#/components/responses/Forbidden"}
        }
      },
      "get": {
        "summary": "Query events, newest first (role viewer)",
        "parameters": [
          {"name": "since", "in": "query", "schema": {"type": "string", "format": "date-time"}},
          {"name": "until", "in": "query", "schema": {"type": "string", "format": "date-time"}},
          {"name": "filter", "in": "query", "schema": {"type": "array", "items": {"type": "string"}}, "style": "form", "explode": true, "description": "field=value; a normalized field, format, class, source, or fields.<dotted.path>"},
          {"name": "q", "in": "query", "schema": {"type": "string"}, "description": "Case-insensitive text anywhere in the event"},
          {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 10000, "default": 100}}
        ],
        "responses": {"200": {"description": "Events", "content": {"application/json": {"schema": {"type": "object", "properties": {"count": {"type": "integer"}, "events": {"type": "array", "items": {"$ref": "#/components/schemas/Event"}}}}}}}, "400": {"$ref": "#/components/responses/BadRequest"}, "401": {"$ref": "#/components/responses/Unauthenticated"}, "403": {"$ref": "#/components/responses/Forbidden"}}
      }
    },
    "/api/v1/events/{id}": {"get": {"summary": "One event (role viewer)", "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string", "format": "uuid"}}], "responses": {"200": {"description": "The event", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Event"}}}}, "404": {"description": "No such event"}, "401": {"$ref": "#/components/responses/Unauthenticated"}}}},
    "/api/v1/alerts": {"get": {"summary": "Alerts raised by detection rules on ingested events, newest first (role viewer)", "parameters": [
        {"name": "since", "in": "query", "schema": {"type": "string", "format": "date-time"}},
        {"name": "until", "in": "query", "schema": {"type": "string", "format": "date-time"}},
        {"name": "level", "in": "query", "schema": {"enum": ["informational", "low", "medium", "high", "critical"]}, "description": "This level and above"},
        {"name": "rule", "in": "query", "schema": {"type": "string"}, "description": "A rule id"},
        {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 10000, "default": 100}}
      ], "responses": {"200": {"description": "Alerts", "content": {"application/json": {"schema": {"type": "object", "properties": {"count": {"type": "integer"}, "alerts": {"type": "array", "items": {"$ref": "#/components/schemas/Alert"}}}}}}}, "400": {"$ref": "#/components/responses/BadRequest"}, "401": {"$ref": "#/components/responses/Unauthenticated"}, "403": {"$ref": "#/components/responses/Forbidden"}}}},
    "/api/v1/stats": {"get": {"summary": "Counts of stored and quarantined events (role viewer)", "responses": {"200": {"description": "Counts"}, "401": {"$ref": "#/components/responses/Unauthenticated"}}}},
    "/api/v1/quarantine": {"get": {"summary": "Quarantined input with source, position and reason (role analyst)", "parameters": [{"name": "limit", "in": "query", "schema": {"type": "integer"}}], "responses": {"200": {"description": "Items"}, "401": {"$ref": "#/components/responses/Unauthenticated"}, "403": {"$ref": "#/components/responses/Forbidden"}}}},
    "/api/v1/tokens": {
      "get": {"summary": "List tokens, without secrets (role admin)", "responses": {"200": {"description": "Tokens"}, "401": {"$ref": "#/components/responses/Unauthenticated"}, "403": {"$ref": "#/components/responses/Forbidden"}}},
      "post": {"summary": "Create a token; the secret is returned once (role admin)", "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["name", "role"], "properties": {"name": {"type": "string"}, "role": {"type": "string"}}}}}}, "responses": {"201": {"description": "Created"}, "400": {"$ref": "#/components/responses/BadRequest"}, "401": {"$ref": "#/components/responses/Unauthenticated"}, "403": {"$ref": "#/components/responses/Forbidden"}}}
    },
    "/api/v1/tokens/{id}": {"delete": {"summary": "Revoke a token (role admin)", "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}], "responses": {"204": {"description": "Revoked"}, "404": {"description": "No such token"}, "401": {"$ref": "#/components/responses/Unauthenticated"}, "403": {"$ref": "#/components/responses/Forbidden"}}}},
    "/api/v1/privacy/redact": {"post": {"summary": "Pseudonymize text or NDJSON (role analyst): typed keyed pseudonyms per domain, prefix-preserving addresses, secrets removed; the originals are sealed in the vault before the answer. Lists what was found where, never the originals.", "parameters": [{"name": "domain", "in": "query", "schema": {"type": "string", "maxLength": 128, "default": "default"}, "description": "Pseudonymization domain (tenant, incident)"}], "requestBody": {"required": true, "content": {"text/plain": {}, "application/x-ndjson": {}}}, "responses": {"200": {"description": "Pseudonymized", "content": {"application/json": {"schema": {"type": "object", "properties": {"domain": {"type": "string"}, "output": {"type": "string"}, "found": {"type": "object"}, "replacements": {"type": "array", "items": {"type": "object", "properties": {"line": {"type": "integer"}, "path": {"type": "string"}, "type": {"type": "string"}, "start": {"type": "integer"}, "end": {"type": "integer"}, "recognizer": {"type": "string"}, "pseudonym": {"type": "string"}}}}}}}}}, "400": {"$ref": "#/components/responses/BadRequest"}, "401": {"$ref": "#/components/responses/Unauthenticated"}, "403": {"$ref": "#/components/responses/Forbidden"}, "413": {"description": "A line too large to scan whole: nothing released"}}}},
    "/api/v1/privacy/reveal": {"post": {"summary": "Re-identify pseudonyms of a domain (role approver); recorded in the audit ledger before the answer. Pseudonyms of erased subjects stay pseudonyms.", "parameters": [{"name": "domain", "in": "query", "schema": {"type": "string", "default": "default"}}], "requestBody": {"required": true, "content": {"text/plain": {}, "application/x-ndjson": {}}}, "responses": {"200": {"description": "Re-identified", "content": {"application/json": {"schema": {"type": "object", "properties": {"domain": {"type": "string"}, "output": {"type": "string"}, "revealed": {"type": "integer"}, "unresolved": {"type": "array", "items": {"type": "string"}}}}}}}, "400": {"$ref": "#/components/responses/BadRequest"}, "401": {"$ref": "#/components/responses/Unauthenticated"}, "403": {"$ref": "#/components/responses/Forbidden"}}}},
    "/api/v1/privacy/subjects/{subject}": {
      "get": {"summary": "Everything kept about a data subject, GDPR Art. 15 (role admin): pseudonyms in every domain and ledger records sealed for it; recorded", "parameters": [{"name": "subject", "in": "path", "required": true, "schema": {"type": "string"}, "description": "TYPE:VALUE, e.g. user:alice"}], "responses": {"200": {"description": "The report"}, "400": {"$ref": "#/components/responses/BadRequest"}, "401": {"$ref": "#/components/responses/Unauthenticated"}, "403": {"$ref": "#/components/responses/Forbidden"}}},
      "delete": {"summary": "Erase a data subject, GDPR Art. 17 (role admin): its keys are destroyed, so its pseudonyms and sealed records become irreversible; the ledger stays verifiable", "parameters": [{"name": "subject", "in": "path", "required": true, "schema": {"type": "string"}}], "responses": {"200": {"description": "Erased", "content": {"application/json": {"schema": {"type": "object", "properties": {"subject": {"type": "string"}, "keys_destroyed": {"type": "integer"}}}}}}, "400": {"$ref": "#/components/responses/BadRequest"}, "401": {"$ref": "#/components/responses/Unauthenticated"}, "403": {"$ref": "#/components/responses/Forbidden"}}}
    },
    "/api/v1/intel": {
      "get": {"summary": "Threat-intelligence indicators stored, by source, and how many are in force (role viewer)", "responses": {"200": {"description": "Counts", "content": {"application/json": {"schema": {"type": "object", "properties": {"stored": {"type": "integer"}, "in_force": {"type": "integer"}, "sources": {"type": "object", "additionalProperties": {"type": "integer"}}}}}}}, "401": {"$ref": "#/components/responses/Unauthenticated"}, "403": {"$ref": "#/components/responses/Forbidden"}}},
      "post": {"summary": "Import a STIX 2.1 bundle or a MISP event (role analyst): its indicators are stored and matched against everything ingested from the next batch on; those that cannot be matched are listed with the reason. Recorded in the audit ledger.", "parameters": [{"name": "source", "in": "query", "schema": {"type": "string", "maxLength": 256, "default": "api"}}], "requestBody": {"required": true, "content": {"application/json": {}}}, "responses": {"200": {"description": "Imported", "content": {"application/json": {"schema": {"type": "object", "properties": {"imported": {"type": "integer"}, "skipped": {"type": "array", "items": {"type": "object", "properties": {"id": {"type": "string"}, "reason": {"type": "string"}}}}}}}}}, "400": {"$ref": "#/components/responses/BadRequest"}, "401": {"$ref": "#/components/responses/Unauthenticated"}, "403": {"$ref": "#/components/responses/Forbidden"}}}
    },
    "/api/v1/gateway/providers": {"get": {"summary": "Every model provider of the gateway with its jurisdiction, class ceiling, revocation, circuit state and failures (role admin)", "responses": {"200": {"description": "Providers", "content": {"application/json": {"schema": {"type": "object", "properties": {"providers": {"type": "array", "items": {"type": "object"}}}}}}}, "401": {"$ref": "#/components/responses/Unauthenticated"}, "403": {"$ref": "#/components/responses/Forbidden"}, "404": {"description": "No gateway is configured"}}}},
    "/api/v1/gateway/providers/{name}/revoke": {"post": {"summary": "Cut a provider off at once, e.g. under export controls (role admin); recorded first. Requests fail over to the next allowed provider.", "parameters": [{"name": "name", "in": "path", "required": true, "schema": {"type": "string"}}], "responses": {"200": {"description": "Revoked"}, "401": {"$ref": "#/components/responses/Unauthenticated"}, "403": {"$ref": "#/components/responses/Forbidden"}, "404": {"description": "No such provider"}}}},
    "/api/v1/gateway/providers/{name}/restore": {"post": {"summary": "Allow a revoked provider again (role admin); recorded first", "parameters": [{"name": "name", "in": "path", "required": true, "schema": {"type": "string"}}], "responses": {"200": {"description": "Restored"}, "401": {"$ref": "#/components/responses/Unauthenticated"}, "403": {"$ref": "#/components/responses/Forbidden"}, "404": {"description": "No such provider"}}}},
    "/v1/chat/completions": {"post": {"summary": "OpenAI Chat Completions through the sovereignty gateway (role gateway-client). `model` names a route (`rempart/NAME`). The request's data class (the client's, raised by the `x-rempart-data-class` header) decides which providers may receive it; personal data is pseudonymized before it leaves and the answer re-identified; providers fail over in route order; every call is recorded. Streaming (SSE), tools and `response_format` JSON Schema (validated by the gateway) are supported. Errors use OpenAI's error format; 503 `rempart_degraded` when no model could serve.", "parameters": [{"name": "x-rempart-data-class", "in": "header", "schema": {"type": "string"}, "description": "TLP label or institutional level; raises the class only"}], "requestBody": {"required": true, "content": {"application/json": {}}}, "responses": {"200": {"description": "A chat completion, or an event stream of chunks when `stream` is true"}, "400": {"description": "Invalid request"}, "401": {"$ref": "#/components/responses/Unauthenticated"}, "403": {"description": "Forbidden, or the policy allows no provider (`policy_refused`, with each provider's reason)"}, "404": {"description": "Unknown model"}, "429": {"description": "Client quota exceeded (Retry-After)"}, "503": {"description": "Degraded: no model could serve, with each attempt"}}}},
    "/v1/messages": {"post": {"summary": "Anthropic Messages through the sovereignty gateway (role gateway-client; `x-api-key` or bearer token). Same policy, pseudonymization, failover and recording as /v1/chat/completions; errors use Anthropic's error format.", "parameters": [{"name": "x-rempart-data-class", "in": "header", "schema": {"type": "string"}}], "requestBody": {"required": true, "content": {"application/json": {}}}, "responses": {"200": {"description": "A message, or an event stream when `stream` is true"}, "400": {"description": "Invalid request"}, "401": {"$ref": "#/components/responses/Unauthenticated"}, "403": {"description": "Forbidden or refused by policy"}, "404": {"description": "Unknown model"}, "429": {"description": "Client quota exceeded"}, "503": {"description": "Degraded: no model could serve"}}}},
    "/v1/models": {"get": {"summary": "The routes this gateway client may use, as OpenAI models (role gateway-client)", "responses": {"200": {"description": "Model list"}, "401": {"$ref": "#/components/responses/Unauthenticated"}, "403": {"$ref": "#/components/responses/Forbidden"}}}},
    "/api/v1/audit/records": {"get": {"summary": "Ledger records with their payloads where keys and retention allow (role auditor). The read is itself recorded.", "parameters": [
        {"name": "from", "in": "query", "schema": {"type": "integer", "minimum": 0, "default": 0}},
        {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}}
      ], "responses": {"200": {"description": "Records", "content": {"application/json": {"schema": {"type": "object", "properties": {"records": {"type": "array", "items": {"$ref": "#/components/schemas/LedgerRecord"}}}}}}}, "401": {"$ref": "#/components/responses/Unauthenticated"}, "403": {"$ref": "#/components/responses/Forbidden"}, "503": {"description": "The ledger could not record the read, so nothing was returned"}}}},
    "/api/v1/audit/records/{seq}": {"get": {"summary": "One ledger record (role auditor); the read is recorded", "parameters": [{"name": "seq", "in": "path", "required": true, "schema": {"type": "integer", "minimum": 0}}], "responses": {"200": {"description": "The record", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/LedgerRecord"}}}}, "404": {"description": "No such record"}, "401": {"$ref": "#/components/responses/Unauthenticated"}, "403": {"$ref": "#/components/responses/Forbidden"}}}},
    "/api/v1/audit/checkpoints": {"get": {"summary": "Every signed checkpoint (C2SP signed notes) and the verifier keys (role auditor)", "responses": {"200": {"description": "Checkpoints", "content": {"application/json": {"schema": {"type": "object", "properties": {"origin": {"type": "string"}, "verifier_keys": {"type": "array", "items": {"type": "string"}}, "checkpoints": {"type": "array", "items": {"type": "object", "properties": {"size": {"type": "integer"}, "root": {"type": "string"}, "time": {"type": "string", "format": "date-time"}, "note": {"type": "string"}}}}}}}}}, "401": {"$ref": "#/components/responses/Unauthenticated"}, "403": {"$ref": "#/components/responses/Forbidden"}}}},
    "/api/v1/audit/proof/inclusion": {"get": {"summary": "RFC 9162 inclusion proof of a record in the tree of the first `size` records (role auditor)", "parameters": [
        {"name": "seq", "in": "query", "required": true, "schema": {"type": "integer", "minimum": 0}},
        {"name": "size", "in": "query", "schema": {"type": "integer"}, "description": "Default: the latest checkpoint's size"}
      ], "responses": {"200": {"description": "Proof", "content": {"application/json": {"schema": {"type": "object", "properties": {"seq": {"type": "integer"}, "size": {"type": "integer"}, "leaf_hash": {"type": "string"}, "proof": {"type": "array", "items": {"type": "string"}}}}}}}, "400": {"$ref": "#/components/responses/BadRequest"}, "401": {"$ref": "#/components/responses/Unauthenticated"}, "403": {"$ref": "#/components/responses/Forbidden"}}}},
    "/api/v1/audit/proof/consistency": {"get": {"summary": "RFC 9162 consistency proof between the trees of the first `from` and `to` records (role auditor)", "parameters": [
        {"name": "from", "in": "query", "required": true, "schema": {"type": "integer", "minimum": 1}},
        {"name": "to", "in": "query", "schema": {"type": "integer"}, "description": "Default: the latest checkpoint's size"}
      ], "responses": {"200": {"description": "Proof", "content": {"application/json": {"schema": {"type": "object", "properties": {"from": {"type": "integer"}, "to": {"type": "integer"}, "proof": {"type": "array", "items": {"type": "string"}}}}}}}, "400": {"$ref": "#/components/responses/BadRequest"}, "401": {"$ref": "#/components/responses/Unauthenticated"}, "403": {"$ref": "#/components/responses/Forbidden"}}}},
    "/api/v1/audit/verify": {"get": {"summary": "Verify the whole ledger now (role auditor)", "responses": {"200": {"description": "`ok` with a report, or the first problem found and where", "content": {"application/json": {"schema": {"type": "object", "properties": {"ok": {"type": "boolean"}, "report": {"type": "object"}, "problem": {"type": "object"}, "message": {"type": "string"}}}}}}, "401": {"$ref": "#/components/responses/Unauthenticated"}, "403": {"$ref": "#/components/responses/Forbidden"}}}},
    "/api/v1/audit/export": {"get": {"summary": "Export records with payloads, per-record keys, inclusion proofs and a signed checkpoint (format rempart-audit-export/1), for third-party verification (role auditor); the export is recorded", "parameters": [
        {"name": "since", "in": "query", "schema": {"type": "string", "format": "date-time"}},
        {"name": "until", "in": "query", "schema": {"type": "string", "format": "date-time"}},
        {"name": "previous", "in": "query", "schema": {"type": "string"}, "description": "A checkpoint note the caller holds, base64: the export adds a consistency proof from it"}
      ], "responses": {"200": {"description": "The export document"}, "400": {"$ref": "#/components/responses/BadRequest"}, "401": {"$ref": "#/components/responses/Unauthenticated"}, "403": {"$ref": "#/components/responses/Forbidden"}}}}
  }
}"##;
