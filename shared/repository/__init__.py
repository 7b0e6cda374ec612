"""DynamoDB access: jobs, idempotency records, API keys and tenants in one table."""
