"""fastmcp's proxy of an mcpServers config, for the gateway benchmark (run with fastmcp's own interpreter).

Usage: fastmcp_proxy.py CONFIG [PORT]   (stdio without PORT, streamable HTTP at http://127.0.0.1:PORT/mcp with it)
"""

import json
import sys

from fastmcp.server import create_proxy

with open(sys.argv[1]) as file:
    proxy = create_proxy(json.load(file))
if len(sys.argv) > 2:
    proxy.run(transport="http", host="127.0.0.1", port=int(sys.argv[2]), show_banner=False, log_level="warning")
else:
    proxy.run(show_banner=False)
