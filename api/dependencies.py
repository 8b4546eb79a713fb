"""The one service every route and page is handed (FastAPI's `Annotated` dependency)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from loraledger.api.facade import Service


def get_service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


ServiceDep = Annotated[Service, Depends(get_service)]
