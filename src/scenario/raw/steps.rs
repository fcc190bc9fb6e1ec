//! The raw steps of a scenario: `[[setup]]`, `[[steps]]` and `[[every]]` entries, the tests
//! of messages (`checks`, `wait_for`, a rule's `match`), captures and `[[on_message]]` rules.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;
use toml::Spanned;

use super::text::Text;
use crate::scenario::plan::RuleDrop;

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Step")]
pub struct RawStep {
    /// An HTTP request: in `[[setup]]`, before every connect attempt (a login whose token
    /// the upgrade sends); in `[[steps]]`, as a step of the loop (publish over REST, receive
    /// over the socket).
    #[schemars(with = "Option<RawHttp>")]
    pub http: Option<Spanned<RawHttp>>,
    /// In `[[every]]`: how often (on the heartbeat's time grid).
    #[schemars(with = "Option<String>")]
    pub every: Option<Text>,
    /// A name for this request step: its requests get their own counts and rtt histogram
    /// (summary `by_step`, requests.csv's `step`, thresholds such as "rtt{step=NAME}").
    #[schemars(with = "Option<String>")]
    pub name: Option<Text>,
    #[schemars(with = "Option<String>")]
    pub send: Option<Text>,
    /// A binary frame: "hex:0a0b…", "base64:…" or "file:PATH" (relative to the scenario).
    #[schemars(with = "Option<String>")]
    pub send_binary: Option<Text>,
    /// "response": one correlated reply; "stream": replies with the request's id until the
    /// one that `last` matches (timed to the first and to the last).
    #[schemars(with = "Option<RawExpect>")]
    pub expect: Option<Spanned<RawExpect>>,
    pub wait: Option<bool>,
    /// Tests of the reply (of the last one, for a stream); a reply that fails one counts as a
    /// check failure, apart from timeouts.
    #[schemars(with = "Option<Vec<RawCheck>>")]
    pub checks: Option<Vec<Spanned<RawCheck>>>,
    /// With expect = "stream": what marks the last reply.
    #[schemars(with = "Option<RawCheck>")]
    pub last: Option<Spanned<RawCheck>>,
    /// Wait for a message from the server (not a correlated reply) that passes this test.
    #[schemars(with = "Option<RawCheck>")]
    pub wait_for: Option<Spanned<RawCheck>>,
    /// With `wait_for`: the next message must pass (a protocol's greeting); another one, or
    /// none within the timeout, drops the connection with cause `protocol_mismatch`, and says
    /// what came.
    pub first: Option<bool>,
    /// How long `wait_for` waits (default: the correlation timeout, else 10s).
    #[schemars(with = "Option<String>")]
    pub timeout: Option<Text>,
    #[schemars(with = "Option<String>")]
    pub sleep: Option<Text>,
    /// Close the connection with this code once the replies awaited are in, then connect
    /// again at once and start over (a connect / request / close cycle).
    #[schemars(with = "Option<u64>")]
    pub close: Option<Spanned<u64>>,
    /// Values to take from the reply (with `expect`) or the message waited for (with
    /// `wait_for`), used later as `{{var.NAME}}`: NAME = "/json/pointer", or a table with
    /// `pointer` or `regex` (its first group) and `scope` ("connection", the default, or
    /// "client": kept across reconnects).
    #[schemars(with = "Option<BTreeMap<String, RawCapture>>")]
    pub capture: Option<Captures>,
    /// With `protocol = "jsonrpc"`: a request, `{ method = "eth_getBalance", params = […] }`,
    /// sent with a numeric id and awaited (an error reply is a check failure);
    /// `subscribe = true` (the default for a method ending in `_subscribe`) matches the
    /// notifications of the subscription its result names.
    #[schemars(with = "Option<RawCall>")]
    pub call: Option<Spanned<RawCall>>,
    /// With `protocol = "jsonrpc"`: a notification, `{ method, params }` (no id, no reply).
    #[schemars(with = "Option<RawCall>")]
    pub notify: Option<Spanned<RawCall>>,
    /// With `protocol = "socketio"`: an event, `["name", args…]`, sent as `42[…]`.
    #[schemars(with = "Option<Vec<serde_json::Value>>")]
    pub emit: Option<Spanned<Vec<toml::Value>>>,
    /// With `protocol = "graphql-ws"`: an operation, `{ query = "subscription { … }",
    /// variables = { … } }`, awaited as a stream of `next` messages until `complete` (an
    /// `error` is a check failure).
    #[schemars(with = "Option<RawOperation>")]
    pub subscribe: Option<Spanned<RawOperation>>,
    /// With `protocol = "stomp"`: a SEND frame, `{ destination = "/queue/orders", body = …,
    /// headers = { … } }`; with a `receipt` header (unless `receipt = false`) awaited and
    /// timed as a request, its RECEIPT the reply.
    #[schemars(with = "Option<RawPublish>")]
    pub publish: Option<Spanned<RawPublish>>,
    /// With `emit`: ask for an acknowledgement (`42<id>[…]` → `43<id>[…]`), awaited and timed
    /// as a request.
    #[schemars(with = "Option<bool>")]
    pub ack: Option<Spanned<bool>>,
}

/// A GraphQL operation: its document, its variables (a TOML table written as JSON, or a
/// JSON template string) and its operation name.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Operation")]
pub struct RawOperation {
    #[schemars(with = "String")]
    pub query: Text,
    #[schemars(with = "Option<serde_json::Value>")]
    pub variables: Option<Spanned<toml::Value>>,
    #[serde(rename = "operationName")]
    pub operation_name: Option<String>,
}

/// A STOMP SEND: the destination, the body (a string as it is, or a TOML table written as
/// JSON), its content-type, more headers, and whether to ask for a receipt (the default).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Publish")]
pub struct RawPublish {
    #[schemars(with = "String")]
    pub destination: Text,
    #[schemars(with = "Option<serde_json::Value>")]
    pub body: Option<Spanned<toml::Value>>,
    #[schemars(with = "Option<String>")]
    pub content_type: Option<Text>,
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, String>")]
    pub headers: BTreeMap<String, Text>,
    pub receipt: Option<bool>,
}

/// A JSON-RPC call or notification: the method, and its params (a TOML value written as
/// JSON, or a string: a JSON template used as it is).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Call")]
pub struct RawCall {
    #[schemars(with = "String")]
    pub method: Text,
    #[schemars(with = "Option<serde_json::Value>")]
    pub params: Option<Spanned<toml::Value>>,
    pub subscribe: Option<bool>,
}

/// An `[[on_message]]` rule.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Rule")]
pub struct RawRule {
    /// The test a message must pass (as in `checks`), or a list of tests that must all pass.
    #[serde(rename = "match")]
    #[schemars(with = "RawMatch")]
    pub matches: Spanned<RawMatch>,
    /// Values to take from the message (as a step's `capture`).
    #[schemars(with = "Option<BTreeMap<String, RawCapture>>")]
    pub capture: Option<Captures>,
    /// A named counter to add one to (a threshold metric); `{{/pointer}}` in it takes a value
    /// of the message: "error_{{/error/code}}".
    #[schemars(with = "Option<String>")]
    pub count: Option<Text>,
    /// A message to send back (a template: an application-level pong).
    #[schemars(with = "Option<String>")]
    pub send: Option<Text>,
    /// Close the connection with this code (once the awaited replies are in) and connect again.
    #[schemars(with = "Option<u64>")]
    pub close: Option<Spanned<u64>>,
    /// The name of an HTTP step: the time from its last request to this message is recorded
    /// (push_latency{step=NAME}), once per request (publish over REST, receive over the socket).
    #[schemars(with = "Option<String>")]
    pub since: Option<Text>,
    /// Also apply to replies to requests (they are still correlated and timed): to count
    /// error replies by their code.
    #[serde(default)]
    pub replies: bool,
    /// An application heartbeat: once this rule matches, a rule with a lapse must match again
    /// within this long ("45s"), else the connection drops with cause `server_ping_timeout`.
    #[schemars(with = "Option<String>")]
    pub lapse: Option<Text>,
    /// As `lapse`, the sum of these captured values in milliseconds (Socket.IO's pingInterval
    /// and pingTimeout from its open packet); not armed while one has no value, or when they
    /// add up to 0 (no heartbeat announced). With `lapse` too, the two add up.
    #[schemars(with = "Option<Vec<String>>")]
    pub lapse_ms: Option<Spanned<Vec<String>>>,
    /// The message is the server's report of a fatal error: the connection drops with this
    /// cause ("stomp_error"), its reason the message's first line and `message` header.
    #[schemars(with = "Option<RuleDrop>")]
    pub drop: Option<Spanned<RuleDrop>>,
    /// With `count`: keep the first message counted as the counter's example (summary
    /// `counter_examples`, masked and cut to 200 characters): what a malformed one looked like.
    #[serde(default)]
    pub example: bool,
}

/// A rule's `match`: one test, or a list of them that must all hold.
#[derive(Debug, JsonSchema)]
#[serde(untagged)]
#[schemars(rename = "Match")]
pub enum RawMatch {
    One(RawCheck),
    All(#[schemars(with = "Vec<RawCheck>")] Vec<Spanned<RawCheck>>),
}

impl<'de> Deserialize<'de> for RawMatch {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = RawMatch;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a test such as { pointer = \"/type\", equals = \"ping\" }, or a list of them")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<RawMatch, A::Error> {
                RawCheck::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(RawMatch::One)
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<RawMatch, A::Error> {
                Vec::deserialize(serde::de::value::SeqAccessDeserializer::new(seq)).map(RawMatch::All)
            }
        }
        d.deserialize_any(Visit)
    }
}

/// `capture = { NAME = … }`.
pub type Captures = BTreeMap<String, Spanned<RawCapture>>;

/// A capture: a JSON pointer, or a table.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
#[schemars(rename = "Capture")]
pub enum RawCapture {
    Pointer(String),
    Table(RawCaptureTable),
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "CaptureTable")]
pub struct RawCaptureTable {
    pub pointer: Option<String>,
    /// A regular expression on the whole message; its first group is the value.
    pub regex: Option<String>,
    pub scope: Option<RawScope>,
}

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RawScope {
    Connection,
    Client,
}

/// A test of a message: the value at `pointer` `equals` a value, `exists` (true or false),
/// or `matches` a regular expression; without `pointer`, `matches` tests the whole message.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Check")]
pub struct RawCheck {
    #[schemars(with = "Option<String>")]
    pub pointer: Option<Text>,
    #[schemars(with = "Option<serde_json::Value>")]
    pub equals: Option<Spanned<toml::Value>>,
    pub exists: Option<bool>,
    #[schemars(with = "Option<String>")]
    pub matches: Option<Text>,
    /// The value (or the whole message) does not match this regular expression, or is not
    /// there: a message of a kind the protocol does not know.
    #[schemars(with = "Option<String>")]
    pub not_matches: Option<Text>,
}

/// What a `send` step waits for: one correlated reply, or a stream of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[schemars(rename = "Expect")]
pub enum RawExpect {
    /// One correlated reply.
    Response,
    /// Replies with the request's id until the one `last` matches (timed to the first and to
    /// the last).
    Stream,
}

/// `http = { method, url, headers, body, expect_status, timeout }` (templates like a send).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Http")]
pub struct RawHttp {
    /// GET (the default), POST, PUT, PATCH, DELETE…
    pub method: Option<String>,
    #[schemars(with = "String")]
    pub url: Text,
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, String>")]
    pub headers: BTreeMap<String, Text>,
    #[schemars(with = "Option<String>")]
    pub body: Option<Text>,
    /// The statuses that mean success (default: any 2xx).
    #[schemars(with = "Option<Vec<u16>>")]
    pub expect_status: Option<Spanned<Vec<u16>>>,
    /// How long the request may take (default 10s).
    #[schemars(with = "Option<String>")]
    pub timeout: Option<Text>,
}
