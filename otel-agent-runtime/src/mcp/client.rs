//! The client side: CLIENT spans around the calls an rmcp client makes, the
//! caller's context in each request's `_meta`, and the transport's view
//! (request ids, network, session) added to them.

use std::borrow::Cow;
use std::collections::HashMap;
use std::future::Future;
use std::ops::Deref;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use opentelemetry::trace::{SpanId, TraceContextExt as _};
use opentelemetry::Context;
use rmcp::model::{
    CallToolRequestMethod, CallToolRequestParams, CallToolResult, ClientRequest,
    CompleteRequestMethod, CompleteRequestParams, CompleteResult, ConstString, GetMeta as _,
    GetPromptRequestMethod, GetPromptRequestParams, GetPromptResult, JsonRpcMessage,
    JsonRpcResponse, ListPromptsRequestMethod, ListPromptsResult,
    ListResourceTemplatesRequestMethod, ListResourceTemplatesResult, ListResourcesRequestMethod,
    ListResourcesResult, ListToolsRequestMethod, ListToolsResult, PaginatedRequestParams, Prompt,
    ReadResourceRequestMethod, ReadResourceRequestParams, ReadResourceResult, RequestId,
    RequestMetaObject, RequestParamsMeta, Resource, ResourceTemplate, ServerResult, Tool,
};
use rmcp::service::{
    ClientInitializeError, RunningService, RxJsonRpcMessage, ServiceError, TxJsonRpcMessage,
};
use rmcp::transport::{IntoTransport, Transport};
use rmcp::{Peer, RoleClient, Service, ServiceExt as _};
use tracing::Instrument as _;

use super::{names, Call, Network, Operation, Outcome, Session, Side, Subject};
use crate::SpanExt as _;

/// Starts an rmcp client over `transport`, traced: [`ServiceExt::serve`](rmcp::ServiceExt::serve)
/// with the transport wrapped in a [`ClientTransport`] and the running client
/// in an [`McpClient`]. Use it where the client was started, and the calls
/// read as before:
///
/// ```no_run
/// # async fn run(stream: tokio::io::DuplexStream) -> Result<(), Box<dyn std::error::Error>> {
/// use rmcp::model::CallToolRequestParams;
///
/// // was: let client = ().serve(transport).await?;
/// let client = otel_agent_runtime::mcp::serve_client((), stream).await?;
/// let tools = client.list_all_tools().await?;            // span `tools/list`
/// let weather = client
///     .call_tool(CallToolRequestParams::new("get_weather")) // span `tools/call get_weather`
///     .await?;
/// # Ok(()) }
/// ```
pub async fn serve_client<S, T, E, A>(
    service: S,
    transport: T,
) -> Result<McpClient<S>, ClientInitializeError>
where
    S: Service<RoleClient>,
    T: IntoTransport<RoleClient, E, A>,
    E: std::error::Error + Send + Sync + 'static,
{
    let transport = ClientTransport::new(transport.into_transport());
    Ok(McpClient::new(service.serve(transport).await?))
}

/// A running rmcp client whose calls are traced: each one a CLIENT span
/// `{mcp.method.name} {target}` under the current span, with the current trace
/// context and baggage in the request's `_meta`, and the
/// [`CLIENT_OPERATION_DURATION`](super::CLIENT_OPERATION_DURATION) metric.
///
/// Make one with [`serve_client`], or from a client you started yourself with
/// [`McpClient::new`] (then wrap its transport in a [`ClientTransport`] for
/// request ids, network attributes and the session metric).
///
/// `call_tool`, `get_prompt` and `read_resource` answer server requests for
/// input through the client's handler, as rmcp's own do; every other call of
/// [`TracedPeer`] is reached through `Deref`, and every call of rmcp's
/// [`Peer`] through it, untraced.
pub struct McpClient<S: Service<RoleClient>> {
    running: RunningService<RoleClient, S>,
    peer: TracedPeer,
}

impl<S: Service<RoleClient>> std::fmt::Debug for McpClient<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpClient")
            .field("peer", &self.peer)
            .finish_non_exhaustive()
    }
}

impl<S: Service<RoleClient>> McpClient<S> {
    /// Traces the calls of a client started with rmcp's `serve`.
    pub fn new(running: RunningService<RoleClient, S>) -> Self {
        let peer = TracedPeer::new(running.peer().clone());
        Self { running, peer }
    }

    /// The traced peer, to clone and hand to other tasks.
    pub fn peer(&self) -> &TracedPeer {
        &self.peer
    }

    /// The running rmcp client (its calls are not traced).
    pub fn running(&self) -> &RunningService<RoleClient, S> {
        &self.running
    }

    /// The running rmcp client, to close it (`close`).
    pub fn running_mut(&mut self) -> &mut RunningService<RoleClient, S> {
        &mut self.running
    }

    /// The running rmcp client, to wait for it or cancel it (`waiting`, `cancel`).
    pub fn into_inner(self) -> RunningService<RoleClient, S> {
        self.running
    }

    /// `tools/call`, driving the server's requests for input through the
    /// client's handler (rmcp's `RunningService::call_tool`).
    pub async fn call_tool(
        &self,
        params: CallToolRequestParams,
    ) -> Result<CallToolResult, ServiceError> {
        let running = &self.running;
        traced(self.peer.inner(), tool_call(&params), params, |p| {
            running.call_tool(p)
        })
        .await
    }

    /// `prompts/get`, driving the server's requests for input through the
    /// client's handler.
    pub async fn get_prompt(
        &self,
        params: GetPromptRequestParams,
    ) -> Result<GetPromptResult, ServiceError> {
        let running = &self.running;
        let op = Operation::new(
            method::<GetPromptRequestMethod>(),
            Subject::Prompt(params.name.clone()),
        );
        traced(self.peer.inner(), op, params, |p| running.get_prompt(p)).await
    }

    /// `resources/read`, driving the server's requests for input through the
    /// client's handler.
    pub async fn read_resource(
        &self,
        params: ReadResourceRequestParams,
    ) -> Result<ReadResourceResult, ServiceError> {
        let running = &self.running;
        let op = Operation::new(
            method::<ReadResourceRequestMethod>(),
            Subject::Resource(params.uri.clone()),
        );
        traced(self.peer.inner(), op, params, |p| running.read_resource(p)).await
    }
}

impl<S: Service<RoleClient>> Deref for McpClient<S> {
    type Target = TracedPeer;

    fn deref(&self) -> &TracedPeer {
        &self.peer
    }
}

/// An rmcp client [`Peer`] whose calls are traced (see [`McpClient`]). Cheap to
/// clone; calls not listed here reach the [`Peer`] through `Deref`, untraced.
#[derive(Debug, Clone)]
pub struct TracedPeer {
    peer: Peer<RoleClient>,
}

impl TracedPeer {
    /// Traces the calls made through `peer`.
    pub fn new(peer: Peer<RoleClient>) -> Self {
        Self { peer }
    }

    /// The rmcp peer (its calls are not traced).
    pub fn inner(&self) -> &Peer<RoleClient> {
        &self.peer
    }

    /// `tools/call`: span `tools/call {tool}`, an `execute_tool` of the tool.
    pub async fn call_tool(
        &self,
        params: CallToolRequestParams,
    ) -> Result<CallToolResult, ServiceError> {
        traced(&self.peer, tool_call(&params), params, |p| {
            self.peer.call_tool(p)
        })
        .await
    }

    /// `tools/list`, one page.
    pub async fn list_tools(
        &self,
        params: Option<PaginatedRequestParams>,
    ) -> Result<ListToolsResult, ServiceError> {
        let op = Operation::new(method::<ListToolsRequestMethod>(), Subject::None);
        traced(&self.peer, op, params.unwrap_or_default(), |p| {
            self.peer.list_tools(Some(p))
        })
        .await
    }

    /// Every tool: `tools/list` page after page, a span each.
    pub async fn list_all_tools(&self) -> Result<Vec<Tool>, ServiceError> {
        let mut all = Vec::new();
        let mut cursor = None;
        loop {
            let page = self.list_tools(Some(page_params(cursor))).await?;
            all.extend(page.tools);
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => return Ok(all),
            }
        }
    }

    /// `prompts/get`: span `prompts/get {prompt}`.
    pub async fn get_prompt(
        &self,
        params: GetPromptRequestParams,
    ) -> Result<GetPromptResult, ServiceError> {
        let op = Operation::new(
            method::<GetPromptRequestMethod>(),
            Subject::Prompt(params.name.clone()),
        );
        traced(&self.peer, op, params, |p| self.peer.get_prompt(p)).await
    }

    /// `prompts/list`, one page.
    pub async fn list_prompts(
        &self,
        params: Option<PaginatedRequestParams>,
    ) -> Result<ListPromptsResult, ServiceError> {
        let op = Operation::new(method::<ListPromptsRequestMethod>(), Subject::None);
        traced(&self.peer, op, params.unwrap_or_default(), |p| {
            self.peer.list_prompts(Some(p))
        })
        .await
    }

    /// Every prompt: `prompts/list` page after page.
    pub async fn list_all_prompts(&self) -> Result<Vec<Prompt>, ServiceError> {
        let mut all = Vec::new();
        let mut cursor = None;
        loop {
            let page = self.list_prompts(Some(page_params(cursor))).await?;
            all.extend(page.prompts);
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => return Ok(all),
            }
        }
    }

    /// `resources/read`: span `resources/read`, with `mcp.resource.uri`.
    pub async fn read_resource(
        &self,
        params: ReadResourceRequestParams,
    ) -> Result<ReadResourceResult, ServiceError> {
        let op = Operation::new(
            method::<ReadResourceRequestMethod>(),
            Subject::Resource(params.uri.clone()),
        );
        traced(&self.peer, op, params, |p| self.peer.read_resource(p)).await
    }

    /// `resources/list`, one page.
    pub async fn list_resources(
        &self,
        params: Option<PaginatedRequestParams>,
    ) -> Result<ListResourcesResult, ServiceError> {
        let op = Operation::new(method::<ListResourcesRequestMethod>(), Subject::None);
        traced(&self.peer, op, params.unwrap_or_default(), |p| {
            self.peer.list_resources(Some(p))
        })
        .await
    }

    /// Every resource: `resources/list` page after page.
    pub async fn list_all_resources(&self) -> Result<Vec<Resource>, ServiceError> {
        let mut all = Vec::new();
        let mut cursor = None;
        loop {
            let page = self.list_resources(Some(page_params(cursor))).await?;
            all.extend(page.resources);
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => return Ok(all),
            }
        }
    }

    /// `resources/templates/list`, one page.
    pub async fn list_resource_templates(
        &self,
        params: Option<PaginatedRequestParams>,
    ) -> Result<ListResourceTemplatesResult, ServiceError> {
        let op = Operation::new(
            method::<ListResourceTemplatesRequestMethod>(),
            Subject::None,
        );
        traced(&self.peer, op, params.unwrap_or_default(), |p| {
            self.peer.list_resource_templates(Some(p))
        })
        .await
    }

    /// Every resource template: `resources/templates/list` page after page.
    pub async fn list_all_resource_templates(&self) -> Result<Vec<ResourceTemplate>, ServiceError> {
        let mut all = Vec::new();
        let mut cursor = None;
        loop {
            let page = self
                .list_resource_templates(Some(page_params(cursor)))
                .await?;
            all.extend(page.resource_templates);
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => return Ok(all),
            }
        }
    }

    /// `completion/complete`.
    pub async fn complete(
        &self,
        params: CompleteRequestParams,
    ) -> Result<CompleteResult, ServiceError> {
        let op = Operation::new(method::<CompleteRequestMethod>(), Subject::None);
        traced(&self.peer, op, params, |p| self.peer.complete(p)).await
    }
}

impl Deref for TracedPeer {
    type Target = Peer<RoleClient>;

    fn deref(&self) -> &Peer<RoleClient> {
        &self.peer
    }
}

fn method<M: ConstString>() -> &'static str {
    M::VALUE
}

fn page_params(cursor: Option<String>) -> PaginatedRequestParams {
    PaginatedRequestParams::default().with_cursor(cursor)
}

fn tool_call(params: &CallToolRequestParams) -> Operation {
    Operation::new(
        method::<CallToolRequestMethod>(),
        Subject::Tool(params.name.to_string()),
    )
}

/// Request parameters: where the context goes, and the tool's arguments.
trait Params: RequestParamsMeta {
    /// `gen_ai.tool.call.arguments`, for a tool call.
    fn arguments_json(&self) -> Option<String> {
        None
    }
}

impl Params for CallToolRequestParams {
    fn arguments_json(&self) -> Option<String> {
        self.arguments
            .as_ref()
            .and_then(|a| serde_json::to_string(a).ok())
    }
}
impl Params for PaginatedRequestParams {}
impl Params for GetPromptRequestParams {}
impl Params for ReadResourceRequestParams {}
impl Params for CompleteRequestParams {}

/// A successful reply: a tool's result may still say the tool failed.
trait Reply {
    /// `isError` on a tool's result.
    fn is_tool_error(&self) -> bool {
        false
    }
    /// `gen_ai.tool.call.result`, for a tool call.
    fn result_json(&self) -> Option<String> {
        None
    }
}

impl Reply for CallToolResult {
    fn is_tool_error(&self) -> bool {
        self.is_error == Some(true)
    }
    fn result_json(&self) -> Option<String> {
        serde_json::to_string(self).ok()
    }
}
impl Reply for ListToolsResult {}
impl Reply for GetPromptResult {}
impl Reply for ListPromptsResult {}
impl Reply for ReadResourceResult {}
impl Reply for ListResourcesResult {}
impl Reply for ListResourceTemplatesResult {}
impl Reply for CompleteResult {}

/// One traced call: the span under the current one, the context in `_meta`,
/// `send` run inside the span, and the outcome recorded. Dropped before the
/// reply, the call ends as `cancelled`.
async fn traced<P, T, F, Fut>(
    peer: &Peer<RoleClient>,
    op: Operation,
    mut params: P,
    send: F,
) -> Result<T, ServiceError>
where
    P: Params,
    T: Reply,
    F: FnOnce(P) -> Fut,
    Fut: Future<Output = Result<T, ServiceError>>,
{
    let mut call = Call::start(Side::Client, op);
    let version = peer
        .peer_info()
        .map(|info| info.protocol_version.as_str().to_owned());
    call.set_protocol_version(version.as_deref());
    call.record_arguments(|| params.arguments_json());
    let span = call.span().clone();
    let cx = if span.is_disabled() {
        Context::current()
    } else {
        span.otel_context()
    };
    let wire = Wire::register(&cx, &span);
    crate::propagation::inject_context(&cx, params.meta_or_default());
    let result = send(params).instrument(span).await;
    if let Some(network) = wire.as_ref().and_then(WireGuard::network) {
        call.set_network(network);
    }
    drop(wire);
    match &result {
        Ok(reply) => {
            call.record_result(|| reply.result_json());
            call.finish(if reply.is_tool_error() {
                Outcome::tool_error()
            } else {
                Outcome::Ok
            });
        }
        Err(error) => call.finish(outcome_of(error)),
    }
    result
}

/// What a failed call's `error.type` is: the JSON-RPC code of an error
/// response, else what went wrong on the client.
fn outcome_of(error: &ServiceError) -> Outcome {
    let error_type = match error {
        ServiceError::McpError(e) => return Outcome::json_rpc(e),
        ServiceError::TransportSend(_) => "transport_send",
        ServiceError::TransportClosed => "transport_closed",
        ServiceError::UnexpectedResponse => "unexpected_response",
        ServiceError::SubscriptionLagged { .. } => "subscription_lagged",
        ServiceError::Cancelled { .. } => "cancelled",
        ServiceError::Timeout { .. } => "timeout",
        ServiceError::InputRequiredRoundsExceeded { .. } => "input_required_rounds_exceeded",
        _ => crate::error_type::ERROR_TYPE_OTHER,
    };
    Outcome::failed(error_type, error.to_string())
}

/// Client transports alive: calls register for them only while there are some.
static TRANSPORTS: AtomicUsize = AtomicUsize::new(0);

/// Calls in flight, by the span id their requests carry in `traceparent`: how
/// a [`ClientTransport`] finds the span of a request it sends.
fn wires() -> &'static Mutex<HashMap<SpanId, Arc<Wire>>> {
    static WIRES: OnceLock<Mutex<HashMap<SpanId, Arc<Wire>>>> = OnceLock::new();
    WIRES.get_or_init(Mutex::default)
}

/// What the transport saw of a call's requests.
struct Wire {
    span: tracing::Span,
    network: OnceLock<Network>,
}

/// A call's place in [`wires`], removed when the call ends.
struct WireGuard {
    id: SpanId,
    wire: Arc<Wire>,
}

impl Wire {
    fn register(cx: &Context, span: &tracing::Span) -> Option<WireGuard> {
        if TRANSPORTS.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let id = cx.span().span_context().span_id();
        if id == SpanId::INVALID {
            return None;
        }
        let wire = Arc::new(Wire {
            span: span.clone(),
            network: OnceLock::new(),
        });
        wires()
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(id, wire.clone());
        Some(WireGuard { id, wire })
    }
}

impl WireGuard {
    fn network(&self) -> Option<Network> {
        self.wire.network.get().cloned()
    }
}

impl Drop for WireGuard {
    fn drop(&mut self) {
        wires()
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&self.id);
    }
}

/// An rmcp client transport that adds what only the transport knows to the
/// spans of [`McpClient`] / [`TracedPeer`] calls: `jsonrpc.request.id`,
/// `network.transport` (`pipe` for a child process, `tcp` and `http` for
/// streamable HTTP, told by the transport's type; see
/// [`with_network_transport`](Self::with_network_transport)), and the
/// [`CLIENT_SESSION_DURATION`](super::CLIENT_SESSION_DURATION) metric when it
/// closes. [`serve_client`] uses it; wrap a transport yourself for rmcp's
/// other ways of starting a client:
///
/// ```no_run
/// # async fn run(stream: tokio::io::DuplexStream) -> Result<(), Box<dyn std::error::Error>> {
/// use otel_agent_runtime::mcp::{ClientTransport, McpClient};
/// use rmcp::transport::IntoTransport as _;
/// use rmcp::ServiceExt as _;
///
/// let transport = ClientTransport::new(stream.into_transport()).with_network_transport("unix");
/// let client = McpClient::new(().serve(transport).await?);
/// # Ok(()) }
/// ```
pub struct ClientTransport<T> {
    inner: T,
    network: Network,
    session: Session,
}

impl<T> std::fmt::Debug for ClientTransport<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTransport")
            .field("network", &self.network)
            .finish_non_exhaustive()
    }
}

impl<T: Transport<RoleClient>> ClientTransport<T> {
    /// Wraps `inner`; its `network.transport` is told by its type.
    pub fn new(inner: T) -> Self {
        TRANSPORTS.fetch_add(1, Ordering::Relaxed);
        let network = Network::of_type_name(std::any::type_name::<T>());
        Self {
            inner,
            session: Session::new(Side::Client, network.clone()),
            network,
        }
    }

    /// Sets `network.transport` (`pipe`, `tcp`, `unix`, ...), for a transport
    /// whose type does not tell.
    pub fn with_network_transport(mut self, transport: impl Into<Cow<'static, str>>) -> Self {
        self.network.transport = Some(transport.into());
        self.session.network = self.network.clone();
        self
    }

    /// A request is leaving: the call that made it learns its id and network.
    fn note_request(&self, request: &ClientRequest, id: &RequestId) {
        let Some(span_id) = traceparent_of(request).and_then(span_id_of) else {
            return;
        };
        let wire = wires()
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&span_id)
            .cloned();
        let Some(wire) = wire else { return };
        // A call that answers requests for input sends more than one: the last id.
        wire.span
            .record(names::JSONRPC_REQUEST_ID, id.to_string().as_str());
        if wire.network.set(self.network.clone()).is_ok() {
            self.network.record_on(&wire.span);
        }
    }
}

impl<T> Drop for ClientTransport<T> {
    fn drop(&mut self) {
        TRANSPORTS.fetch_sub(1, Ordering::Relaxed);
        self.session.end();
    }
}

impl<T: Transport<RoleClient>> Transport<RoleClient> for ClientTransport<T> {
    type Error = T::Error;

    fn name() -> Cow<'static, str> {
        T::name()
    }

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleClient>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        if let JsonRpcMessage::Request(request) = &item {
            self.note_request(&request.request, &request.id);
        }
        self.inner.send(item)
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleClient>> {
        let message = self.inner.receive().await;
        if let Some(JsonRpcMessage::Response(JsonRpcResponse {
            result: ServerResult::InitializeResult(init),
            ..
        })) = &message
        {
            self.session.protocol_version = Some(init.protocol_version.as_str().to_owned());
        }
        message
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        self.session.end();
        self.inner.close().await
    }
}

/// The `traceparent` a request carries: in its envelope's `_meta`, or in its
/// parameters' (where [`TracedPeer`] puts it).
fn traceparent_of(request: &ClientRequest) -> Option<&str> {
    if let Some(tp) = request.get_meta().get_traceparent() {
        return Some(tp);
    }
    let meta: Option<&RequestMetaObject> = match request {
        ClientRequest::CallToolRequest(r) => r.params.meta(),
        ClientRequest::GetPromptRequest(r) => r.params.meta(),
        ClientRequest::ReadResourceRequest(r) => r.params.meta(),
        ClientRequest::CompleteRequest(r) => r.params.meta(),
        ClientRequest::ListToolsRequest(r) => r.params.as_ref().and_then(|p| p.meta()),
        ClientRequest::ListPromptsRequest(r) => r.params.as_ref().and_then(|p| p.meta()),
        ClientRequest::ListResourcesRequest(r) => r.params.as_ref().and_then(|p| p.meta()),
        ClientRequest::ListResourceTemplatesRequest(r) => r.params.as_ref().and_then(|p| p.meta()),
        _ => None,
    };
    meta.and_then(|m| m.get_traceparent())
}

/// The parent span id of a W3C `traceparent` (`00-{trace}-{span}-{flags}`).
fn span_id_of(traceparent: &str) -> Option<SpanId> {
    let mut parts = traceparent.split('-');
    let span = parts.nth(2)?;
    (span.len() == 16)
        .then(|| SpanId::from_hex(span).ok())
        .flatten()
        .filter(|id| *id != SpanId::INVALID)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn span_ids_are_read_from_traceparents() {
        assert_eq!(
            span_id_of("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            SpanId::from_hex("00f067aa0ba902b7").ok()
        );
        assert_eq!(span_id_of("00-4bf9-00f0-01"), None);
        assert_eq!(
            span_id_of("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"),
            None
        );
        assert_eq!(span_id_of("garbage"), None);
    }
}
