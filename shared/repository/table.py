"""What every repository over the one table holds: its name, and a DynamoDB client made when first used."""

from __future__ import annotations

from typing import Any

from shared import aws


class TableRepository:
    def __init__(self, table_name: str, client: Any = None) -> None:
        if not table_name:
            raise ValueError("table_name is required")
        self.table_name = table_name
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = aws.new_client("dynamodb")
        return self._client
