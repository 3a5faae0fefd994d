//! The server side: SERVER spans for the requests an rmcp server handles, in
//! the trace their `_meta` (or, over HTTP, their headers) carries.

use std::borrow::Cow;
use std::future::Future;
use std::sync::Mutex;

use opentelemetry::Context;
use rmcp::model::{
    CallToolRequestMethod, CallToolRequestParams, CallToolResponse, CancelTaskMethod,
    CancelTaskParams, CancelledNotificationParam, CompleteRequestMethod, CompleteRequestParams,
    CompleteResult, ConstString, CustomNotification, CustomRequest, CustomResult,
    DiscoverRequestMethod, DiscoverResult, GetPromptRequestMethod, GetPromptRequestParams,
    GetPromptResponse, GetSkillRequestMethod, GetSkillRequestParams, GetSkillResult, GetTaskMethod,
    GetTaskParams, GetTaskResult, InitializeRequestParams, InitializeResult,
    InitializeResultMethod, ListPromptsRequestMethod, ListPromptsResult,
    ListResourceTemplatesRequestMethod, ListResourceTemplatesResult, ListResourcesRequestMethod,
    ListResourcesResult, ListSkillsRequestMethod, ListSkillsResult, ListToolsRequestMethod,
    ListToolsResult, PaginatedRequestParams, PingRequestMethod, ProgressNotificationParam,
    ProtocolVersion, ReadResourceDirectoryRequestMethod, ReadResourceDirectoryRequestParams,
    ReadResourceDirectoryResult, ReadResourceRequestMethod, ReadResourceRequestParams,
    ReadResourceResponse, ServerConfig, SetLevelRequestMethod, SetLevelRequestParams,
    SubscribeRequestMethod, SubscribeRequestParams, SubscriptionFilter, Tool,
    UnsubscribeRequestMethod, UnsubscribeRequestParams, UpdateTaskMethod, UpdateTaskParams,
};
use rmcp::service::{
    MaybeSendFuture, NotificationContext, RequestContext, RoleServer, SubscriptionContext,
};
use rmcp::{ErrorData as McpError, ServerHandler};
use tracing::Instrument as _;

use super::{names, Call, Network, Operation, Outcome, Session, Side, Subject};

/// The `Mcp-Session-Id` header of the streamable HTTP transport.
const SESSION_HEADER: &str = "mcp-session-id";

/// An rmcp server handler whose requests are traced: each one a SERVER span
/// `{mcp.method.name} {target}`, a child of the caller's span when the
/// request's `_meta` (or, over HTTP, its `traceparent` header) carries one,
/// with the caller's baggage; the
/// [`SERVER_OPERATION_DURATION`](super::SERVER_OPERATION_DURATION) and
/// [`SERVER_SESSION_DURATION`](super::SERVER_SESSION_DURATION) metrics.
/// Spans made while a request is handled (an `#[agent_step]` or `#[llm_call]`
/// in a tool) are its children.
///
/// Wrap the handler where the server starts, over any transport:
///
/// ```no_run
/// use otel_agent_runtime::mcp::TracedServer;
/// use rmcp::ServiceExt as _;
///
/// # async fn run<H: rmcp::ServerHandler>(handler: H, stream: tokio::io::DuplexStream)
/// # -> Result<(), Box<dyn std::error::Error>> {
/// // stdio: TracedServer::new(handler).serve(rmcp::transport::stdio())
/// let server = TracedServer::new(handler).serve(stream).await?;
/// server.waiting().await?;
/// # Ok(()) }
/// // streamable HTTP: StreamableHttpService::new(|| Ok(TracedServer::new(MyHandler::new())), ...)
/// ```
///
/// Every `ServerHandler` method is passed on to the wrapped handler; a
/// request the handler never sees (rejected by rmcp before dispatch, for a
/// protocol version it does not support) has no span.
pub struct TracedServer<H> {
    inner: H,
    network: Option<Network>,
    session: Mutex<Option<Session>>,
}

impl<H> std::fmt::Debug for TracedServer<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TracedServer")
            .field("network", &self.network)
            .finish_non_exhaustive()
    }
}

impl<H> TracedServer<H> {
    /// Traces the requests `inner` handles.
    pub fn new(inner: H) -> Self {
        Self {
            inner,
            network: None,
            session: Mutex::new(None),
        }
    }

    /// Sets `network.transport` (`pipe`, `tcp`, `unix`, ...). Without it, a
    /// request that came over HTTP says `tcp` (and `network.protocol.name`
    /// `http`), any other `pipe`: a server's stdio.
    pub fn with_network_transport(mut self, transport: impl Into<Cow<'static, str>>) -> Self {
        self.network = Some(Network::transport(transport));
        self
    }

    /// The wrapped handler.
    pub fn inner(&self) -> &H {
        &self.inner
    }

    /// Starts the span of a request: in the context the request carries.
    fn start(&self, op: Operation, context: &RequestContext<RoleServer>) -> Call {
        let parent = parent_context(context);
        let mut call = {
            let _attached = parent.attach();
            Call::start(Side::Server, op)
        };
        call.span()
            .record(names::JSONRPC_REQUEST_ID, context.id.to_string().as_str());
        let http = context.extensions.get::<http::request::Parts>();
        if let Some(session) = http
            .and_then(|parts| parts.headers.get(SESSION_HEADER))
            .and_then(|v| v.to_str().ok())
        {
            call.span().record(names::MCP_SESSION_ID, session);
        }
        let version = context.protocol_version();
        call.set_protocol_version(version.as_ref().map(ProtocolVersion::as_str));
        call.set_network(self.network_of(http));
        call
    }

    fn network_of(&self, http: Option<&http::request::Parts>) -> Network {
        if let Some(network) = &self.network {
            return network.clone();
        }
        match http {
            Some(parts) => Network {
                transport: Some(Cow::Borrowed("tcp")),
                protocol_name: Some("http"),
                protocol_version: http_version(parts.version),
            },
            None => Network::transport("pipe"),
        }
    }

    /// A session begins with `initialize`.
    fn start_session(&self, context: &RequestContext<RoleServer>) {
        let http = context.extensions.get::<http::request::Parts>();
        let mut session = Session::new(Side::Server, self.network_of(http));
        session.protocol_version = context.protocol_version().map(|v| v.as_str().to_owned());
        let mut slot = self
            .session
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(mut earlier) = slot.replace(session) {
            earlier.end();
        }
    }
}

impl<H> Drop for TracedServer<H> {
    fn drop(&mut self) {
        let session = self
            .session
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(session) = session.as_mut() {
            session.end();
        }
    }
}

fn http_version(version: http::Version) -> Option<&'static str> {
    Some(match version {
        http::Version::HTTP_10 => "1.0",
        http::Version::HTTP_11 => "1.1",
        http::Version::HTTP_2 => "2",
        http::Version::HTTP_3 => "3",
        _ => return None,
    })
}

/// The context a request was sent in: from its `_meta`, else (over HTTP) from
/// its headers; a request that carries none starts a trace of its own.
fn parent_context(context: &RequestContext<RoleServer>) -> Context {
    let base = Context::new();
    let meta = &context.meta;
    if meta.get_traceparent().is_some() || meta.get_baggage().is_some() {
        return crate::propagation::extract_with_context(&base, meta);
    }
    match context.extensions.get::<http::request::Parts>() {
        Some(parts) => crate::propagation::extract_with_context(&base, &parts.headers),
        None => base,
    }
}

/// A handler's successful answer: a tool's may still say the tool failed.
trait Answer {
    fn is_tool_error(&self) -> bool {
        false
    }
    fn result_json(&self) -> Option<String> {
        None
    }
}

impl Answer for CallToolResponse {
    fn is_tool_error(&self) -> bool {
        matches!(self, CallToolResponse::Complete(r) if r.is_error == Some(true))
    }
    fn result_json(&self) -> Option<String> {
        match self {
            CallToolResponse::Complete(r) => serde_json::to_string(r).ok(),
            _ => None,
        }
    }
}

macro_rules! plain_answers {
    ($($t:ty),* $(,)?) => { $(impl Answer for $t {})* };
}

plain_answers!(
    (),
    InitializeResult,
    DiscoverResult,
    CompleteResult,
    GetPromptResponse,
    ListPromptsResult,
    ListResourcesResult,
    ListResourceTemplatesResult,
    ReadResourceResponse,
    ListToolsResult,
    CustomResult,
    GetTaskResult,
    ListSkillsResult,
    GetSkillResult,
);

/// Runs a handler's future inside the call's span and ends the call with its
/// outcome: a JSON-RPC error's code, a tool's `isError`, or success.
async fn handled<R: Answer>(
    call: Call,
    handler: impl Future<Output = Result<R, McpError>>,
) -> Result<R, McpError> {
    let result = handler.instrument(call.span().clone()).await;
    match &result {
        Ok(answer) => {
            call.record_result(|| answer.result_json());
            call.finish(if answer.is_tool_error() {
                Outcome::tool_error()
            } else {
                Outcome::Ok
            });
        }
        Err(error) => call.finish(Outcome::json_rpc(error)),
    }
    result
}

fn method<M: ConstString>() -> &'static str {
    M::VALUE
}

/// A request method of `ServerHandler`, passed on inside its span.
macro_rules! traced_request {
    ($name:ident, $method:ty, $params:ty => $answer:ty) => {
        traced_request!($name, $method, $params => $answer, |_p: &$params| Subject::None);
    };
    ($name:ident, $method:ty, $params:ty => $answer:ty, $subject:expr) => {
        fn $name(
            &self,
            request: $params,
            context: RequestContext<RoleServer>,
        ) -> impl Future<Output = Result<$answer, McpError>> + MaybeSendFuture + '_ {
            let op = Operation::new(method::<$method>(), $subject(&request));
            let call = self.start(op, &context);
            handled(call, self.inner.$name(request, context))
        }
    };
}

impl<H: ServerHandler> ServerHandler for TracedServer<H> {
    fn ping(
        &self,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<(), McpError>> + MaybeSendFuture + '_ {
        let call = self.start(
            Operation::new(method::<PingRequestMethod>(), Subject::None),
            &context,
        );
        handled(call, self.inner.ping(context))
    }

    fn initialize(
        &self,
        request: InitializeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<InitializeResult, McpError>> + MaybeSendFuture + '_ {
        self.start_session(&context);
        let call = self.start(
            Operation::new(method::<InitializeResultMethod>(), Subject::None),
            &context,
        );
        handled(call, self.inner.initialize(request, context))
    }

    fn negotiate_initialize(
        &self,
        request: &InitializeRequestParams,
    ) -> Result<InitializeResult, McpError> {
        self.inner.negotiate_initialize(request)
    }

    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        self.inner.supported_protocol_versions()
    }

    fn discover(
        &self,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<DiscoverResult, McpError>> + MaybeSendFuture + '_ {
        let call = self.start(
            Operation::new(method::<DiscoverRequestMethod>(), Subject::None),
            &context,
        );
        handled(call, self.inner.discover(context))
    }

    traced_request!(complete, CompleteRequestMethod, CompleteRequestParams => CompleteResult);
    traced_request!(set_level, SetLevelRequestMethod, SetLevelRequestParams => ());
    traced_request!(
        get_prompt, GetPromptRequestMethod, GetPromptRequestParams => GetPromptResponse,
        |p: &GetPromptRequestParams| Subject::Prompt(p.name.clone())
    );
    traced_request!(
        list_prompts, ListPromptsRequestMethod, Option<PaginatedRequestParams> => ListPromptsResult
    );
    traced_request!(
        list_resources, ListResourcesRequestMethod, Option<PaginatedRequestParams> => ListResourcesResult
    );
    traced_request!(
        list_resource_templates, ListResourceTemplatesRequestMethod,
        Option<PaginatedRequestParams> => ListResourceTemplatesResult
    );
    traced_request!(
        read_resource, ReadResourceRequestMethod, ReadResourceRequestParams => ReadResourceResponse,
        |p: &ReadResourceRequestParams| Subject::Resource(p.uri.clone())
    );

    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        self.inner.accepted_subscription_filter(requested)
    }

    fn listen(
        &self,
        context: SubscriptionContext,
    ) -> impl Future<Output = Result<(), McpError>> + MaybeSendFuture + '_ {
        // A subscription lasts as long as the client listens: not an operation.
        self.inner.listen(context)
    }

    traced_request!(subscribe, SubscribeRequestMethod, SubscribeRequestParams => ());
    traced_request!(unsubscribe, UnsubscribeRequestMethod, UnsubscribeRequestParams => ());

    fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<CallToolResponse, McpError>> + MaybeSendFuture + '_ {
        let op = Operation::new(
            method::<CallToolRequestMethod>(),
            Subject::Tool(request.name.to_string()),
        );
        let call = self.start(op, &context);
        call.record_arguments(|| {
            request
                .arguments
                .as_ref()
                .and_then(|a| serde_json::to_string(a).ok())
        });
        handled(call, self.inner.call_tool(request, context))
    }

    traced_request!(
        list_tools, ListToolsRequestMethod, Option<PaginatedRequestParams> => ListToolsResult
    );

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.inner.get_tool(name)
    }

    fn on_custom_request(
        &self,
        request: CustomRequest,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<CustomResult, McpError>> + MaybeSendFuture + '_ {
        let op = Operation {
            method: Cow::Owned(request.method.clone()),
            subject: Subject::None,
        };
        let call = self.start(op, &context);
        handled(call, self.inner.on_custom_request(request, context))
    }

    fn on_cancelled(
        &self,
        notification: CancelledNotificationParam,
        context: NotificationContext<RoleServer>,
    ) -> impl Future<Output = ()> + MaybeSendFuture + '_ {
        self.inner.on_cancelled(notification, context)
    }

    fn on_progress(
        &self,
        notification: ProgressNotificationParam,
        context: NotificationContext<RoleServer>,
    ) -> impl Future<Output = ()> + MaybeSendFuture + '_ {
        self.inner.on_progress(notification, context)
    }

    fn on_initialized(
        &self,
        context: NotificationContext<RoleServer>,
    ) -> impl Future<Output = ()> + MaybeSendFuture + '_ {
        self.inner.on_initialized(context)
    }

    fn on_roots_list_changed(
        &self,
        context: NotificationContext<RoleServer>,
    ) -> impl Future<Output = ()> + MaybeSendFuture + '_ {
        self.inner.on_roots_list_changed(context)
    }

    fn on_custom_notification(
        &self,
        notification: CustomNotification,
        context: NotificationContext<RoleServer>,
    ) -> impl Future<Output = ()> + MaybeSendFuture + '_ {
        self.inner.on_custom_notification(notification, context)
    }

    fn get_info(&self) -> ServerConfig {
        self.inner.get_info()
    }

    traced_request!(get_task, GetTaskMethod, GetTaskParams => GetTaskResult);
    traced_request!(update_task, UpdateTaskMethod, UpdateTaskParams => ());
    traced_request!(cancel_task, CancelTaskMethod, CancelTaskParams => ());
    traced_request!(
        list_skills, ListSkillsRequestMethod, Option<PaginatedRequestParams> => ListSkillsResult
    );
    traced_request!(get_skill, GetSkillRequestMethod, GetSkillRequestParams => GetSkillResult);
    traced_request!(
        read_resource_directory, ReadResourceDirectoryRequestMethod,
        ReadResourceDirectoryRequestParams => ReadResourceDirectoryResult
    );
}
