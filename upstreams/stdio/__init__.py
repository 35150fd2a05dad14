"""stdio MCP servers, hosted by Gatehouse's runner and served to the gateway as Streamable HTTP.

Most MCP servers people install speak stdio only. Gatehouse runs them itself in one supervised
process, the runner (``manage.py stdio_runner``, a Procfile line and a compose service), so they
get every promise an HTTP upstream gets: to the gateway a stdio server is a Streamable HTTP
upstream at ``<runner URL>/servers/<name>/mcp`` (``upstreams.target`` dials it there with the
runner key), so admission, scopes, tool filtering, session binding, audit and rate limits are the
same code. The runner is not an open MCP endpoint: every request must carry the runner key.

The modules, bottom up:

- ``command``: what to run (``StdioCommand``: argv, environment, cwd, isolation, process cap),
  where the runner listens and its key; the one place environment values are decrypted.
- ``child``: one stdio process (spawned with the official SDK's stdio client), its handshake, its
  stderr (logged masked, last line kept) and the routing of its messages to the HTTP sessions it
  serves (request ids and progress tokens renumbered, so sessions sharing a process never see
  each other's traffic).
- ``supervisor``: keeps one child running, restarting it with backoff; ``HostedServer``: one
  registered server, its ``shared`` process or one process per session, under ``max_processes``.
- ``runner``: the runner's ASGI app (key check, one SDK Streamable HTTP server transport per
  session) and its loop: follow the configuration in the database, report states there
  (``StdioStatus``, shown by the console and ``/ready``).
"""
