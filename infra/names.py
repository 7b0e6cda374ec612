"""Names shared by the CDK app, the CLI and the local stack (no CDK import, so all can use it)."""

STACK_NAME = "KlingRelay"
