"""The tool catalogue in the agent frameworks people use, one module per framework.

Each module is an optional extra of the same name, and importing one whose framework is missing
raises ``ImportError`` naming the extra::

    pip install "mcp-connections[openai]"         # adapters.openai: Chat Completions and Responses
    pip install "mcp-connections[anthropic]"      # adapters.anthropic: the Messages API
    pip install "mcp-connections[langchain]"      # adapters.langchain: LangChain BaseTools
    pip install "mcp-connections[openai-agents]"  # adapters.openai_agents: an MCPServer for the Agents SDK
    pip install "mcp-connections[pydantic-ai]"    # adapters.pydantic_ai: a Pydantic AI toolset
    pip install "mcp-connections[fastmcp]"        # adapters.fastmcp: a fastmcp ClientTransport

Every adapter takes a ``ServerGroup`` (its catalogue, with its names) or a single ``ManagedSession``,
so the framework calls through our supervised connections: restarts, health checks, bounded stops.
Nothing is imported here, so that ``import mcp_connections.adapters`` needs no framework.
"""

__all__: list[str] = []
