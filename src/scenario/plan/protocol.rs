//! The application protocols a scenario may name (`[connect] protocol`): each is a preset
//! that `validate` expands into the scenario's own primitives (correlation, steps, rules),
//! so the plan it prints shows everything the preset adds.

use std::fmt;

use schemars::JsonSchema;
use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
#[schemars(rename = "Protocol")]
pub enum Protocol {
    /// JSON-RPC 2.0: `call` and `notify` steps, replies matched by `/id`, error replies
    /// counted by `error.code`, notifications counted by method, and `*_subscribe` results
    /// matched to their notifications.
    Jsonrpc,
    /// Socket.IO v5 over Engine.IO v4 (WebSocket transport): the open packet and namespace
    /// connect as setup steps, pings answered, `emit` steps with acknowledgements correlated,
    /// events counted by name.
    Socketio,
    /// GraphQL over WebSocket (the graphql-transport-ws subprotocol): connection_init and its
    /// ack as setup, `subscribe` steps as streams (next… then complete), pings answered.
    #[serde(rename = "graphql-ws")]
    GraphqlWs,
    /// STOMP 1.2 over WebSocket (the v12.stomp subprotocol, as RabbitMQ and Spring serve it):
    /// CONNECT and CONNECTED with heart-beating, SUBSCRIBE as setup, `publish` steps whose
    /// receipts are the correlation, MESSAGE frames counted per subscription, ERROR a drop.
    Stomp,
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Jsonrpc => "jsonrpc",
            Protocol::Socketio => "socketio",
            Protocol::GraphqlWs => "graphql-ws",
            Protocol::Stomp => "stomp",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
