"""The admin API: a customer's data rights (admins only, with the console's session).

``POST /api/admin/customers/export`` returns everything held about a customer as one JSON
document; ``POST /api/admin/customers/erase`` erases it and returns the rows removed per
table. The body names the customer: ``{"ref": ...}``, a store customer's id (``c_...``), an
email address, or ``conversation:ID``. The reference travels in the body, never in the URL, so
an email address does not end up in access logs.
Both are written to the audit log. An unknown customer is 404 (``customer_not_found``, or
``already_erased`` when an erasure took them)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from frontdesk.actions import data_rights
from frontdesk.api.console import Admin
from frontdesk.api.routes import FrontdeskDep

router = APIRouter(prefix="/api/admin", tags=["admin"])


class CustomerRef(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ref: str = Field(
        min_length=1,
        max_length=320,
        description="A store customer's id (c_...), an email address, or conversation:ID.",
    )


@router.post("/customers/export")
async def export_customer(body: CustomerRef, user: Admin, fd: FrontdeskDep) -> Any:
    """Everything Frontdesk holds about the customer: store profile and orders, actions,
    leads, and every conversation with its messages, vault values, notes (internal), handoffs,
    rating, events and the audit entries about it."""
    return await data_rights.do_export(fd, body.ref, user.id)


@router.post("/customers/erase")
async def erase_customer(body: CustomerRef, user: Admin, fd: FrontdeskDep) -> Any:
    """Erase the customer: every row that belongs to or identifies them. Not undoable."""
    erased = await data_rights.do_erase(fd, body.ref, user.id)
    return erased.public()
