"""The audit trail: the append-only event table (every write and every read of a patient's record) and its
hash chain, one seal per event (append-only, like the event row itself) and the sealer's state.

The event row never changes after insert. The sealer links events in order: a seal holds the event's content
hash and chain_hash = sha256(prev_chain_hash + content_hash); `seq` is the position in the chain.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Column, Index, String, false
from sqlmodel import Field, SQLModel

from models.base import MYSQL_TABLE_ARGS, big_primary_key, created_at_field, instant_field


class Event(SQLModel, table=True):
    __tablename__ = "event"
    # the operation log reads mutations newest first: one index range, however many read events lie between
    __table_args__ = (Index("ix_event_mutation_id", "is_mutation", "id"), MYSQL_TABLE_ARGS)

    id: int | None = big_primary_key()
    occurred_at: datetime = created_at_field()
    actor_id: int | None = Field(default=None, index=True)
    action: str = Field(max_length=32, index=True)
    operation: str = Field(default="", max_length=64)
    entity_type: str = Field(default="", max_length=48)
    entity_id: str = Field(default="", max_length=64)
    patient_id: int | None = Field(default=None, index=True)
    request_id: str = Field(default="", max_length=64)
    ip: str = Field(default="", max_length=64)
    outcome: str = Field(default="success", max_length=32)
    detail: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    # The operation log (a view of this table): the event of a mutation the API ran, with the caller's client, how
    # long the mutation had run, and its variables as the allow-list kept them (resolvers/audit/oplog.py).
    # (server defaults only: the multi-row insert of read events, resolvers/data/events.py, names its columns)
    is_mutation: bool = Field(default=False, sa_column=Column(Boolean, nullable=False, server_default=false()))
    user_agent: str = Field(default="", sa_column=Column(String(255), nullable=False, server_default=""))
    duration_ms: int | None = None
    variables: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))


GENESIS_HASH = "0" * 64


class EventSeal(SQLModel, table=True):
    __tablename__ = "event_seal"
    __table_args__ = (MYSQL_TABLE_ARGS,)

    event_id: int = Field(primary_key=True, sa_type=BigInteger, sa_column_kwargs={"autoincrement": False})
    seq: int = Field(sa_type=BigInteger, unique=True, index=True)
    content_hash: str = Field(max_length=64)
    prev_hash: str = Field(max_length=64)
    chain_hash: str = Field(max_length=64)
    sealed_at: datetime = created_at_field()


class AuditSealState(SQLModel, table=True):
    """A single row (id 1): the end of the chain, the sealer's scan position and the archived cut.

    The sealer locks this row for its short step, so two app instances never seal at once."""

    __tablename__ = "audit_seal_state"
    __table_args__ = (MYSQL_TABLE_ARGS,)

    id: int = Field(default=1, primary_key=True, sa_column_kwargs={"autoincrement": False})
    last_seq: int = Field(default=0, sa_type=BigInteger)
    last_chain_hash: str = Field(default=GENESIS_HASH, max_length=64)
    max_sealed_event_id: int = Field(default=0, sa_type=BigInteger)
    # every event id <= scan_from_id is sealed (or a gap no longer watched); above it, up to max_sealed_event_id,
    # every id is sealed or in a watched gap (AuditSealGap): the first one's first id - 1, and when it was seen
    scan_from_id: int = Field(default=0, sa_type=BigInteger)
    gap_seen_at: datetime | None = instant_field()
    archived_seq: int = Field(default=0, sa_type=BigInteger)
    archived_chain_hash: str = Field(default=GENESIS_HASH, max_length=64)
    updated_at: datetime = created_at_field()


class AuditSealGap(SQLModel, table=True):
    """Event ids missing below sealed ones, first_id..last_id, watched by the sealer since `seen_at`: an insert still
    in flight (MariaDB commits out of id order) or one rolled back; on Galera, the ids the other nodes' auto-increment
    offsets skip. A late event found in one is sealed at the end of the chain and its id leaves the gap; a gap
    watched longer than the sealer's grace period is dropped (the full sweep of verify-audit still seals a later
    arrival). Only the sealer writes it, under its lock on the state row."""

    __tablename__ = "audit_seal_gap"
    __table_args__ = (MYSQL_TABLE_ARGS,)

    first_id: int = Field(primary_key=True, sa_type=BigInteger, sa_column_kwargs={"autoincrement": False})
    last_id: int = Field(sa_type=BigInteger)
    seen_at: datetime = created_at_field()
