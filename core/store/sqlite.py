"""The embedded stores of the local default (profile, connections, chats): one SQLite file in
the data folder."""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import closing, contextmanager
from dataclasses import dataclass, fields
from datetime import datetime, timedelta, timezone
from pathlib import Path

from core.failures import UserFacingError, ours
from core.history.model import (
    ATTACHMENT_KINDS,
    MAX_ATTACHMENT_NAME_LENGTH,
    MAX_ATTACHMENTS,
    MAX_DOCUMENT_CHARS,
    MAX_COMPARED,
    MAX_FOLDER_LENGTH,
    MAX_IMAGE_BYTES,
    MAX_MODEL_LABEL_LENGTH,
    MIN_COMPARED,
    REPLY_LEASE_SECONDS,
    SNIPPET_MARKS,
    Attachment,
    Chat,
    Comparison,
    Found,
    Message,
    ReplyState,
)
from core.providers.connections import Connection
from core.providers.kinds import KINDS
from core.providers.profile import FIELD_LABELS, PROFILE_FIELDS, Profile
from core.store.contracts import UsageTotal
from collections.abc import Sequence
from core.store.contracts import WholeChat
from core.store.errors import (
    CHAT_GONE,
    MAX_ATTACHMENT_BYTES_PER_USER,
    MAX_ATTACHMENTS_PER_USER,
    MAX_COMPARISONS_PER_USER,
    MAX_CONTEXT_WINDOW,
    MAX_REPLY_TOKENS,
    ConnectionChanged,
    ProfileChanged,
    StoreUnavailable,
    chat_value_refused,
    connection_value_refused,
    name_taken,
    too_many_connections,
)

DB_FILENAME = "switchboard.db"
BUSY_TIMEOUT = 2.0  # seconds a read or save waits for another window's write to finish: then "busy"
LOCAL_USER_ID = "local"

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Migration:
    name: str  # recorded in schema_migrations: never rename a shipped one
    apply: Callable[[sqlite3.Connection], None]


MIGRATIONS: list[Migration] = []  # applied in order, each once; each mirrors supabase/migrations


def migration(step: Callable[[sqlite3.Connection], None]) -> Callable:
    """Register `step`, named mNNN_what; it is recorded as NNN_what."""
    MIGRATIONS.append(Migration(step.__name__.removeprefix("m"), step))
    return step


@migration
def m001_create_profiles(db: sqlite3.Connection) -> None:
    db.execute("""
        create table profiles (
            user_id text primary key,
            created_at text not null default (datetime('now')),
            updated_at text not null default (datetime('now')),
            display_name text not null default '' check (length(display_name) <= 1000),
            openai_api_key text not null default '' check (length(openai_api_key) <= 1000),
            openai_organization_id text not null default ''
                check (length(openai_organization_id) <= 1000)
        )
        """)


@migration
def m002_add_openai_compatible(db: sqlite3.Connection) -> None:
    for column in ("openai_compatible_api_key", "openai_compatible_base_url",
                   "openai_compatible_model_name"):
        db.execute(f"alter table profiles add column {column} text not null default '' "
                   f"check (length({column}) <= 1000)")


@migration
def m003_create_connections(db: sqlite3.Connection) -> None:
    """The user's connections, and the profile's column for the seed server's quirks."""
    db.execute("alter table profiles add column openai_compatible_quirks text not null default '' "
               "check (length(openai_compatible_quirks) <= 1000)")
    db.execute("""
        create table connections (
            id text primary key,
            user_id text not null,
            name text not null
                constraint connections_name_length check (length(name) between 1 and 100),
            kind text not null
                constraint connections_kind_known check (kind in ('openai', 'openai-compatible')),
            base_url text not null default ''
                constraint connections_base_url_length check (length(base_url) <= 1000),
            api_key text not null default ''
                constraint connections_api_key_length check (length(api_key) <= 1000),
            headers text not null default ''
                constraint connections_headers_length check (length(headers) <= 40000),
            enabled integer not null default 1 check (enabled in (0, 1)),
            models text not null default '[]'
                constraint connections_models_list check (
                    json_valid(models) and json_type(models) = 'array'
                    and json_array_length(models) <= 200),
            default_model text not null default ''
                constraint connections_default_model_length check (length(default_model) <= 200),
            quirks text not null default '[]'
                constraint connections_quirks_list check (
                    json_valid(quirks) and json_type(quirks) = 'array'
                    and json_array_length(quirks) <= 20),
            created_at text not null default (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
            updated_at text not null default (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
        )
        """)
    # SQLite's lower() folds ASCII only: the store also compares names in Python (see add).
    db.execute("create unique index connections_user_name_key "
               "on connections (user_id, lower(name))")
    db.execute("""
        create trigger connections_limit before insert on connections
        when (select count(*) from connections where user_id = new.user_id) >= 50
        begin select raise(abort, 'connections_limit: at most 50 connections per user'); end
        """)
    db.execute("""
        create trigger connections_keep_owner before update of user_id on connections
        when new.user_id is not old.user_id
        begin select raise(abort, 'a connection cannot be moved to another user'); end
        """)


@migration
def m004_create_chats(db: sqlite3.Connection) -> None:
    """Chats and messages, searched through external-content FTS5 tables (the text is stored
    once). An INTEGER PRIMARY KEY keeps rowids stable, which external content needs."""
    db.execute("""
        create table chats (
            seq integer primary key,
            id text not null unique,
            user_id text not null,
            title text not null default ''
                constraint chats_title_length check (length(title) <= 200),
            connection_id text not null default ''
                constraint chats_connection_id_length check (length(connection_id) <= 200),
            model text not null default ''
                constraint chats_model_length check (length(model) <= 200),
            system_prompt text not null default ''
                constraint chats_system_prompt_length check (length(system_prompt) <= 100000),
            temperature real
                constraint chats_temperature_range check (temperature between 0 and 2),
            current_id text,
            pinned integer not null default 0 check (pinned in (0, 1)),
            created_at text not null,
            updated_at text not null
        )
        """)
    db.execute("create index chats_user_updated_idx on chats (user_id, updated_at desc, id desc)")
    db.execute("""
        create table messages (
            seq integer primary key,
            id text not null unique,
            chat_id text not null,
            user_id text not null,
            parent_id text,
            role text not null
                constraint messages_role_known check (role in ('user', 'assistant')),
            content text not null default ''
                constraint messages_content_length check (length(content) <= 1000000),
            model_label text not null default ''
                constraint messages_model_label_length check (length(model_label) <= 500),
            status text not null default 'complete'
                constraint messages_status_known check (status in ('streaming', 'complete',
                    'stopped', 'interrupted', 'incomplete', 'failed')),
            error text not null default ''
                constraint messages_error_length check (length(error) <= 10000),
            reasoning text not null default ''
                constraint messages_reasoning_length check (length(reasoning) <= 1000000),
            usage text
                constraint messages_usage_object check (
                    usage is null or (json_valid(usage) and json_type(usage) = 'object')),
            created_at text not null
        )
        """)
    db.execute("create index messages_chat_created_idx on messages (chat_id, created_at)")
    # Triggers, not foreign keys: they hold whether or not a connection turned foreign keys on.
    for statement in (
        """create trigger messages_chat_owner before insert on messages
           when not exists (select 1 from chats where id = new.chat_id
                            and user_id = new.user_id)
           begin select raise(abort, 'messages_chat: the chat is not the writer''s'); end""",
        """create trigger messages_parent_in_chat before insert on messages
           when new.parent_id is not null and not exists (
               select 1 from messages where id = new.parent_id and chat_id = new.chat_id)
           begin select raise(abort, 'messages_parent_in_chat: parent in another chat'); end""",
        """create trigger messages_keep_place before update of user_id, chat_id, parent_id
           on messages when new.user_id is not old.user_id or new.chat_id is not old.chat_id
               or new.parent_id is not old.parent_id
           begin select raise(abort, 'a message cannot be moved to another chat or user');
           end""",
        """create trigger chats_keep_owner before update of user_id, id on chats
           when new.user_id is not old.user_id or new.id is not old.id
           begin select raise(abort, 'a chat cannot be moved to another user'); end""",
        """create trigger messages_touch_chat after insert on messages begin
           update chats set updated_at = new.created_at
           where id = new.chat_id and updated_at < new.created_at; end""",
        """create trigger chats_delete_messages after delete on chats begin
           delete from messages where chat_id = old.id; end""",
    ):
        db.execute(statement)
    _create_search(db, "chats", "title")
    _create_search(db, "messages", "content")


def _create_search(db: sqlite3.Connection, table: str, column: str) -> None:
    """`{table}_fts` over `table.column`, kept in step by triggers. unicode61 without
    removing diacritics: "café" is not "cafe", as in PostgreSQL's 'simple' configuration."""
    fts = f"{table}_fts"
    db.execute(f"create virtual table {fts} using fts5({column}, content='{table}', "
               "content_rowid='seq', tokenize='unicode61 remove_diacritics 0')")
    add = f"insert into {fts} (rowid, {column}) values (new.seq, new.{column});"
    remove = (f"insert into {fts} ({fts}, rowid, {column}) "
              f"values ('delete', old.seq, old.{column});")
    db.execute(f"create trigger {table}_fts_insert after insert on {table} begin {add} end")
    db.execute(f"create trigger {table}_fts_delete after delete on {table} begin {remove} end")
    db.execute(f"create trigger {table}_fts_update after update of {column} on {table} "
               f"begin {remove} {add} end")


# The bytes of a row's text, as the bounds count them (the other columns are short).
_CHAT_BYTES = ("length(cast({row}.title as blob)) + length(cast({row}.system_prompt as blob))"
               " + length(cast({row}.model as blob)) + length(cast({row}.connection_id as blob))")
_MESSAGE_BYTES = ("length(cast({row}.content as blob)) + length(cast({row}.reasoning as blob))"
                  " + length(cast({row}.error as blob))"
                  " + length(cast({row}.model_label as blob))"
                  " + coalesce(length(cast({row}.usage as blob)), 0)")


@migration
def m005_bound_each_user(db: sqlite3.Connection) -> None:
    """Each user's bounds, kept in `user_totals` by triggers: only new writes are refused
    (what is stored stays, and counts). No rate bound: the file's one user crowds out nobody."""
    refusals = {
        "models": "connections_model_names_length: a model name is at most 200 characters",
        "chats": "user_totals_chats: at most 10,000 chats per user",
        "messages": "user_totals_messages: at most 200,000 messages per user",
        "bytes": "user_totals_bytes: at most 2 GB of text per user",
    }
    limits = {"chats": 10_000, "messages": 200_000, "bytes": 2_000_000_000}
    for name, event in (("insert", "insert"), ("update", "update of models")):
        db.execute(f"""create trigger connections_model_names_{name} after {event} on connections
                when exists (select 1 from json_each(new.models)
                             where type = 'text' and length(value) > 200)
                begin select raise(abort, '{refusals["models"]}'); end""")
    db.execute("""
        create table user_totals (
            user_id text primary key,
            chats integer not null default 0,
            messages integer not null default 0,
            bytes integer not null default 0
        )
        """)
    # What is stored already counts from the start.
    db.execute(f"""insert into user_totals (user_id, chats, messages, bytes)
            select user_id, sum(chats), sum(messages), sum(bytes) from (
                select c.user_id, 1 as chats, 0 as messages, {_CHAT_BYTES.format(row='c')}
                    as bytes from chats c
                union all
                select m.user_id, 0, 1, {_MESSAGE_BYTES.format(row='m')} from messages m)
            group by user_id""")
    for table, bytes_of, text_columns in (
        ("chats", _CHAT_BYTES, "title, system_prompt, model, connection_id"),
        ("messages", _MESSAGE_BYTES, "content, reasoning, error, model_label, usage"),
    ):
        new, old = bytes_of.format(row="new"), bytes_of.format(row="old")
        db.execute(f"""create trigger {table}_count_added after insert on {table} begin
                insert or ignore into user_totals (user_id) values (new.user_id);
                update user_totals set {table} = {table} + 1, bytes = bytes + {new}
                    where user_id = new.user_id;
                select raise(abort, '{refusals[table]}') from user_totals
                    where user_id = new.user_id and {table} > {limits[table]};
                select raise(abort, '{refusals["bytes"]}') from user_totals
                    where user_id = new.user_id and {new} > 0 and bytes > {limits["bytes"]};
                end""")
        db.execute(f"""create trigger {table}_count_removed after delete on {table} begin
                update user_totals set {table} = max({table} - 1, 0),
                    bytes = max(bytes - ({old}), 0) where user_id = old.user_id;
                end""")
        # A reply as it streams, a chat's new system prompt.
        db.execute(f"""create trigger {table}_count_text after update of {text_columns} on {table}
                when {new} <> {old} begin
                update user_totals set bytes = max(bytes + ({new}) - ({old}), 0)
                    where user_id = new.user_id;
                select raise(abort, '{refusals["bytes"]}') from user_totals
                    where user_id = new.user_id and {new} > {old}
                    and bytes > {limits["bytes"]};
                end""")


SEARCHED_PREFIX = 100_000  # characters of a message the search index holds, in both backends
SEARCH_PREFIXES = "1 2 3"  # the word starts FTS5 indexes as such (m012)


@migration
def m006_keep_long_messages_and_reply_leases(db: sqlite3.Connection) -> None:
    """Messages up to 32,000,000 characters of content and of reasoning, a streaming reply's
    heartbeat and its stop request. SQLite cannot change a CHECK: the table is made again
    (https://sqlite.org/lang_altertable.html#otheralter), its rows, row ids, indexes and
    triggers kept; the search index now holds each message's first SEARCHED_PREFIX characters,
    as PostgreSQL's does, so a long reply's appends never index it whole again."""
    # Its own indexes and triggers, and the chats' trigger that deletes from it (a rename
    # refuses to leave a trigger naming a table that is gone).
    kept = [sql for (sql,) in db.execute(
        "select sql from sqlite_master where sql is not null and type in ('index', 'trigger')"
        " and (tbl_name = 'messages' or name = 'chats_delete_messages')"
        " and name not like 'messages_fts_%'")]
    db.execute("drop trigger chats_delete_messages")
    db.execute("drop table messages_fts")
    db.execute("""
        create table new_messages (
            seq integer primary key,
            id text not null unique,
            chat_id text not null,
            user_id text not null,
            parent_id text,
            role text not null
                constraint messages_role_known check (role in ('user', 'assistant')),
            content text not null default ''
                constraint messages_content_length check (length(content) <= 32000000),
            model_label text not null default ''
                constraint messages_model_label_length check (length(model_label) <= 500),
            status text not null default 'complete'
                constraint messages_status_known check (status in ('streaming', 'complete',
                    'stopped', 'interrupted', 'incomplete', 'failed')),
            error text not null default ''
                constraint messages_error_length check (length(error) <= 10000),
            reasoning text not null default ''
                constraint messages_reasoning_length check (length(reasoning) <= 32000000),
            usage text
                constraint messages_usage_object check (
                    usage is null or (json_valid(usage) and json_type(usage) = 'object')),
            created_at text not null,
            heartbeat_at text,  -- the store's writes set it, by SQLite's clock; null before 006
            stop_requested integer not null default 0 check (stop_requested in (0, 1))
        )
        """)
    columns = ("seq, id, chat_id, user_id, parent_id, role, content, model_label, status, "
               "error, reasoning, usage, created_at")
    db.execute(f"insert into new_messages ({columns}) select {columns} from messages")
    db.execute("drop table messages")  # its triggers and indexes with it, none of them firing
    db.execute("alter table new_messages rename to messages")
    for sql in kept:
        db.execute(sql)
    db.execute(f"create view messages_searched (seq, content) as"
               f" select seq, substr(content, 1, {SEARCHED_PREFIX}) from messages")
    db.execute("create virtual table messages_fts using fts5(content,"
               " content='messages_searched', content_rowid='seq',"
               " tokenize='unicode61 remove_diacritics 0')")
    prefix = f"substr({{row}}.content, 1, {SEARCHED_PREFIX})"
    new, old = prefix.format(row="new"), prefix.format(row="old")
    add = f"insert into messages_fts (rowid, content) values (new.seq, {new});"
    remove = (f"insert into messages_fts (messages_fts, rowid, content) "
              f"values ('delete', old.seq, {old});")
    db.execute(f"create trigger messages_fts_insert after insert on messages begin {add} end")
    db.execute(f"create trigger messages_fts_delete after delete on messages begin {remove} end")
    db.execute(f"create trigger messages_fts_update after update of content on messages"
               f" when {new} is not {old} begin {remove} {add} end")
    db.execute("insert into messages_fts (messages_fts) values ('rebuild')")


# An attachment's bounds, the same in both backends (core.history.model's limits).
ATTACHMENT_KIND_LIST = ", ".join(f"'{kind}'" for kind in ATTACHMENT_KINDS)
MAX_IMAGE_SIDE = 100_000  # pixels: a stored image is downscaled far below this
MAX_ATTACHMENT_MIME_LENGTH = 255
MAX_ATTACHED_FILE_BYTES = 10_000_000_000  # the file as attached: a number we only show
# The bytes an attachment takes, as the user's bound counts them.
_ATTACHMENT_BYTES = "(length({row}.data) + length(cast({row}.text as blob)))"


@migration
def m007_keep_attachments_and_reply_room(db: sqlite3.Connection) -> None:
    """A message's attachments (its files, kept with it and deleted with it), each user's
    count and bytes of them bounded, and two options of a chat: the room kept for a reply
    (max_tokens) and the context window the user typed."""
    db.execute(f"alter table chats add column max_tokens integer constraint"
               f" chats_max_tokens_range check (max_tokens between 1 and {MAX_REPLY_TOKENS})")
    db.execute(f"alter table chats add column context_window integer constraint"
               f" chats_context_window_range check"
               f" (context_window between 1 and {MAX_CONTEXT_WINDOW})")
    # The foreign key says what the row belongs to; the triggers below keep it whether or not
    # a connection turned foreign keys on, as for messages.
    db.execute(f"""
        create table attachments (
            seq integer primary key,
            id text not null unique,
            message_id text not null references messages (id) on delete cascade,
            chat_id text not null,
            user_id text not null,
            position integer not null constraint attachments_position_range
                check (position between 0 and {MAX_ATTACHMENTS - 1}),
            kind text not null
                constraint attachments_kind_known check (kind in ({ATTACHMENT_KIND_LIST})),
            name text not null constraint attachments_name_length
                check (length(name) between 1 and {MAX_ATTACHMENT_NAME_LENGTH}),
            mime text not null default '' constraint attachments_mime_length
                check (length(mime) <= {MAX_ATTACHMENT_MIME_LENGTH}),
            data blob not null default x'' constraint attachments_data_size
                check (typeof(data) = 'blob' and length(data) <= {MAX_IMAGE_BYTES}
                       and (kind = 'image' or length(data) = 0)),
            text text not null default '' constraint attachments_text_length
                check (length(text) <= {MAX_DOCUMENT_CHARS}
                       and (kind = 'document' or length(text) = 0)),
            size integer not null default 0 constraint attachments_size_range
                check (size between 0 and {MAX_ATTACHED_FILE_BYTES}),
            width integer not null default 0 constraint attachments_width_range
                check (width between 0 and {MAX_IMAGE_SIDE}),
            height integer not null default 0 constraint attachments_height_range
                check (height between 0 and {MAX_IMAGE_SIDE}),
            created_at text not null default ({_NOW}),
            constraint attachments_position_taken unique (message_id, position)
        )
        """)
    db.execute("create index attachments_chat_idx on attachments (chat_id, message_id, position)")
    for statement in (
        """create trigger attachments_message_owner before insert on attachments
           when not exists (select 1 from messages where id = new.message_id
                            and chat_id = new.chat_id and user_id = new.user_id)
           begin select raise(abort, 'attachments_message: the message is not the writer''s');
           end""",
        # Attachments are immutable: a message's files are what was sent with it.
        """create trigger attachments_immutable before update on attachments
           begin select raise(abort, 'attachments_immutable: an attachment is never changed');
           end""",
        """create trigger messages_delete_attachments after delete on messages begin
           delete from attachments where message_id = old.id; end""",
    ):
        db.execute(statement)
    db.execute("alter table user_totals add column attachments integer not null default 0")
    db.execute("alter table user_totals add column attachment_bytes integer not null default 0")
    new, old = _ATTACHMENT_BYTES.format(row="new"), _ATTACHMENT_BYTES.format(row="old")
    db.execute(f"""create trigger attachments_count_added after insert on attachments begin
            insert or ignore into user_totals (user_id) values (new.user_id);
            update user_totals set attachments = attachments + 1,
                attachment_bytes = attachment_bytes + {new} where user_id = new.user_id;
            select raise(abort, 'user_totals_attachments: at most {MAX_ATTACHMENTS_PER_USER:,}
                attachments per user')
                from user_totals where user_id = new.user_id
                and attachments > {MAX_ATTACHMENTS_PER_USER};
            select raise(abort, 'user_totals_attachment_bytes: at most
                {MAX_ATTACHMENT_BYTES_PER_USER:,} bytes of attachments per user')
                from user_totals where user_id = new.user_id
                and attachment_bytes > {MAX_ATTACHMENT_BYTES_PER_USER};
            end""")
    db.execute(f"""create trigger attachments_count_removed after delete on attachments begin
            update user_totals set attachments = max(attachments - 1, 0),
                attachment_bytes = max(attachment_bytes - {old}, 0)
                where user_id = old.user_id;
            end""")


# A uuid as the app writes it (core.history.model.new_id, lower case), as a GLOB pattern.
_UUID_GLOB = "-".join("[0-9a-f]" * n for n in (8, 4, 4, 4, 12))


@migration
def m008_keep_comparisons(db: sqlite3.Connection) -> None:
    """A chat's comparisons (one message to 2-4 models): which replies, in which column order,
    each column's model label, blind or not, and the first verdict, kept once given. Each
    user's count of them bounded. The reply and label lists are JSON text."""
    db.execute(f"""
        create table comparisons (
            seq integer primary key,
            id text not null unique,
            chat_id text not null references chats (id) on delete cascade,
            user_id text not null,
            message_id text not null,
            reply_ids text not null constraint comparisons_replies_count check (
                json_valid(reply_ids) and json_type(reply_ids) = 'array'
                and json_array_length(reply_ids) between {MIN_COMPARED} and {MAX_COMPARED}),
            labels text not null constraint comparisons_labels_count check (
                json_valid(labels) and json_type(labels) = 'array'
                and json_array_length(labels) = json_array_length(reply_ids)),
            blind integer not null default 0 check (blind in (0, 1)),
            picked_id text constraint comparisons_picked_among_replies check (
                picked_id is null or instr(reply_ids, '"' || picked_id || '"') > 0),
            tie integer not null default 0 constraint comparisons_picked_or_tie
                check (tie in (0, 1) and not (tie = 1 and picked_id is not null)),
            created_at text not null,
            decided_at text
        )
        """)
    db.execute("create index comparisons_chat_idx on comparisons (chat_id, created_at)")
    db.execute("create index comparisons_user_idx on comparisons (user_id, blind)")
    # What a CHECK cannot say (each element of a list), and whose chat it is: triggers, as
    # for messages, so they hold whether or not a connection turned foreign keys on.
    well_formed = f"""
        when new.id not glob '{_UUID_GLOB}' or new.message_id not glob '{_UUID_GLOB}'
            or exists (select 1 from json_each(new.reply_ids)
                       where type <> 'text' or value not glob '{_UUID_GLOB}')
            or (select count(distinct value) from json_each(new.reply_ids))
               <> json_array_length(new.reply_ids)
        begin select raise(abort, 'comparisons_ids: a comparison names uuids, each reply once');
        end"""
    labels = f"""
        when exists (select 1 from json_each(new.labels)
                     where type <> 'text' or length(value) > {MAX_MODEL_LABEL_LENGTH})
        begin select raise(abort, 'comparisons_labels_length: a label is at most
            {MAX_MODEL_LABEL_LENGTH} characters'); end"""
    for statement in (
        f"create trigger comparisons_ids before insert on comparisons {well_formed}",
        f"create trigger comparisons_labels before insert on comparisons {labels}",
        """create trigger comparisons_chat_owner before insert on comparisons
           when not exists (select 1 from chats where id = new.chat_id
                            and user_id = new.user_id)
           begin select raise(abort, 'comparisons_chat: the chat is not the writer''s'); end""",
        """create trigger comparisons_keep_place before update of id, chat_id, user_id,
               message_id, reply_ids, labels, blind, created_at on comparisons
           begin select raise(abort, 'comparisons_keep_place: only a verdict is written');
           end""",
        """create trigger comparisons_verdict_kept before update of picked_id, tie, decided_at
           on comparisons when (old.picked_id is not null or old.tie = 1)
               and (new.picked_id is not old.picked_id or new.tie is not old.tie
                    or new.decided_at is not old.decided_at)
           begin select raise(abort, 'comparisons_verdict_kept: the first verdict is kept');
           end""",
        """create trigger chats_delete_comparisons after delete on chats begin
           delete from comparisons where chat_id = old.id; end""",
    ):
        db.execute(statement)
    db.execute("alter table user_totals add column comparisons integer not null default 0")
    db.execute(f"""create trigger comparisons_count_added after insert on comparisons begin
            insert or ignore into user_totals (user_id) values (new.user_id);
            update user_totals set comparisons = comparisons + 1 where user_id = new.user_id;
            select raise(abort, 'user_totals_comparisons: at most
                {MAX_COMPARISONS_PER_USER:,} comparisons per user')
                from user_totals where user_id = new.user_id
                and comparisons > {MAX_COMPARISONS_PER_USER};
            end""")
    db.execute("""create trigger comparisons_count_removed after delete on comparisons begin
            update user_totals set comparisons = max(comparisons - 1, 0)
                where user_id = old.user_id;
            end""")


@migration
def m009_file_chats_in_folders(db: sqlite3.Connection) -> None:
    """A chat's folder (a name the user typed, "" for none), and the indexes the list needs
    to show pinned chats first and one folder's chats, newest first."""
    db.execute(f"""alter table chats add column folder text not null default ''
        constraint chats_folder_length check (length(folder) <= {MAX_FOLDER_LENGTH})""")
    db.execute("create index chats_user_pinned_idx"
               " on chats (user_id, pinned, updated_at desc, id desc)")
    db.execute("create index chats_user_folder_idx"
               " on chats (user_id, folder, updated_at desc, id desc)")


@migration
def m010_keep_saved_prompts(db: sqlite3.Connection) -> None:
    """Each user's saved prompts: a name unique per user whatever its case, a text with
    `{{variables}}`, and the model, system prompt and temperature it sets; at most 500."""
    db.execute("""
        create table prompts (
            id text primary key,
            user_id text not null,
            name text not null
                constraint prompts_name_length check (length(name) between 1 and 100),
            text text not null
                constraint prompts_text_length check (length(text) between 1 and 100000),
            model text not null default ''
                constraint prompts_model_length check (length(model) <= 500),
            system_prompt text not null default ''
                constraint prompts_system_prompt_length check (length(system_prompt) <= 100000),
            temperature real
                constraint prompts_temperature_range check (temperature between 0 and 2),
            created_at text not null default (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
            updated_at text not null default (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
        )
        """)
    # SQLite's lower() folds ASCII only: the store also compares names in Python.
    db.execute("create unique index prompts_user_name_key on prompts (user_id, lower(name))")
    db.execute("""
        create trigger prompts_limit before insert on prompts
        when (select count(*) from prompts where user_id = new.user_id) >= 500
        begin select raise(abort, 'prompts_limit: at most 500 saved prompts per user'); end
        """)
    db.execute("""
        create trigger prompts_keep_owner before update of user_id on prompts
        when new.user_id is not old.user_id
        begin select raise(abort, 'a prompt cannot be moved to another user'); end
        """)


@migration
def m011_choose_who_titles_chats(db: sqlite3.Connection) -> None:
    """Who writes a new chat's title: '' its own model, 'none' nobody, else a model's label."""
    db.execute("alter table profiles add column title_model text not null default '' "
               "check (length(title_model) <= 1000)")


@migration
def m012_search_as_typed_by_prefix(db: sqlite3.Connection) -> None:
    """Both search indexes again, with prefix indexes of a word's first 1, 2 and 3 letters:
    a search as typed ends with the start of a word ("q" is every word in q), which without
    them merges the list of every such word, each time it is asked."""
    for fts, column, content in (("chats_fts", "title", "chats"),
                                 ("messages_fts", "content", "messages_searched")):
        db.execute(f"drop table {fts}")  # the triggers that keep it name it: they stay
        db.execute(f"create virtual table {fts} using fts5({column}, content='{content}',"
                   " content_rowid='seq', tokenize='unicode61 remove_diacritics 0',"
                   f" prefix='{SEARCH_PREFIXES}')")
        db.execute(f"insert into {fts} ({fts}) values ('rebuild')")


@contextmanager
def _immediate(db: sqlite3.Connection) -> Iterator[None]:
    """One real transaction, DDL included, holding the write lock from its start, so sessions
    starting together queue up (the connection is in autocommit mode)."""
    db.execute("begin immediate")
    try:
        yield
    except BaseException:
        if db.in_transaction:  # SQLite rolls back by itself on some errors (a full disk)
            db.execute("rollback")
        raise
    db.execute("commit")


def _recorded(db: sqlite3.Connection) -> set[str]:
    return {row[0] for row in db.execute("select name from schema_migrations")}


def _record_is_current(db: sqlite3.Connection) -> bool:
    columns = {row[1] for row in db.execute("pragma table_info(schema_migrations)")}
    return "applied_at" in columns


def migrate(db: sqlite3.Connection) -> list[str]:
    """Apply the migrations this database lacks, each in its own transaction; return their
    names. `db` must be in autocommit mode. Two processes may start at once: each step is
    re-checked under the write lock."""
    if not _record_is_current(db):  # a new file, or one made before 'applied_at' existed
        with _immediate(db):
            db.execute("create table if not exists schema_migrations (name text primary key)")
            if not _record_is_current(db):  # another session may have added it meanwhile
                db.execute("alter table schema_migrations add column applied_at text")
    done = _recorded(db)  # read without the write lock: an up-to-date file is never written
    applied = []
    for step in MIGRATIONS:
        if step.name in done:
            continue
        with _immediate(db):
            if step.name in _recorded(db):  # another session applied it meanwhile
                continue
            step.apply(db)
            db.execute("insert into schema_migrations (name, applied_at) "
                       "values (?, datetime('now'))", (step.name,))
        applied.append(step.name)
    return applied


_REMAKING = threading.Lock()
_GENERATIONS: dict[Path, int] = {}  # data file -> times it was made again while running


def times_made_again(data_dir: Path) -> int:
    """How many times the data file in `data_dir` was made again after going missing while
    running: what a page read from it before then is gone from it."""
    return _GENERATIONS.get(Path(data_dir) / DB_FILENAME, 0)


def _went_missing(path: Path, what: str) -> str:
    again = ("the chat on screen is saved into it again by itself" if what == "chats"
             else "save again to keep what is on screen (saved API keys and header values "
                  "are never shown, so type them again)")
    return (f"The data file {path} went missing while Switchboard was running. It was made "
            f"again, empty and readable only by you: {again}. Anything else it held is gone "
            "unless you put the file back from a backup (with the app stopped).")


class _LocalFile:
    """What both local stores share: `data_dir/switchboard.db`, opened and migrated once, and
    every open, read and write guarded: a failure is a StoreUnavailable saying what happened
    and what to do, never a raw sqlite3 or OS error."""

    what = "settings"  # what the store keeps, said when it fails (see _WHAT)

    def __init__(self, data_dir: Path, user_id: str = LOCAL_USER_ID,
                 busy_timeout: float = BUSY_TIMEOUT):
        self.path = Path(data_dir) / DB_FILENAME
        self.user_id = user_id
        self.busy_timeout = busy_timeout
        self._written_in = self.generation  # the data file this store was opened on
        with self._guarded("open"):
            self._create()

    def _create(self) -> None:
        """Create the file readable by its owner only (it holds encrypted keys), if it is
        missing (never touch it else: a read-only disk must still be readable); migrate it."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            pass
        with closing(sqlite3.connect(self.path, timeout=self.busy_timeout,
                                     isolation_level=None)) as db:
            migrate(db)

    @property
    def generation(self) -> int:
        """How many times the data file was made again after going missing (see _made_again)."""
        return _GENERATIONS.get(self.path, 0)

    def _made_again(self) -> None:
        """The data file was deleted while the app runs: make it again, private and migrated
        (never let SQLite make it, readable by all and empty), and say so once."""
        with _REMAKING:
            if self.path.exists():  # another store or session made it meanwhile
                return
            self._create()
            _GENERATIONS[self.path] = self.generation + 1
        logger.warning("The data file %s went missing; it was made again", self.path)
        raise StoreUnavailable(_went_missing(self.path, self.what), "missing")

    def _connect(self) -> sqlite3.Connection:
        # A short-lived connection per call: Streamlit runs each session on its own thread.
        # Autocommit: transactions are opened explicitly (BEGIN IMMEDIATE) where we write.
        if not self.path.exists():
            self._made_again()
        db = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None)
        db.row_factory = sqlite3.Row
        return db

    @contextmanager
    def _opened(self, doing: str) -> Iterator[sqlite3.Connection]:
        """A connection for one call, its failures said (see _guarded)."""
        with self._guarded(doing), closing(self._connect()) as db:
            yield db

    @contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        """A connection inside one write transaction (see _immediate)."""
        with self._opened("save") as db, _immediate(db):
            yield db

    @contextmanager
    def _guarded(self, doing: str) -> Iterator[None]:
        """Turn store failures into messages; `doing` is "open", "read" or "save"."""
        try:
            yield
        except UserFacingError:  # already said (a refusal, a change made elsewhere)
            raise
        except sqlite3.IntegrityError as exc:  # a CHECK, UNIQUE or trigger refusal
            raise UserFacingError(self._refusal(str(exc))) from exc
        except (sqlite3.Error, OSError) as exc:
            if isinstance(exc, _OUR_ERRORS) or _code(exc) in _OUR_CODES:
                raise ours(exc) from exc  # our SQL or our use of sqlite3, not the file
            raise store_unavailable(exc, self.path, doing, self.what) from exc
        except Exception as exc:  # neither SQLite nor the disk: a bug of ours
            raise ours(exc) from exc

    def _refusal(self, detail: str) -> str:
        """The database's refusal (a CHECK, UNIQUE or trigger) of a write, said for the user."""
        raise NotImplementedError

    def _update(self, db: sqlite3.Connection, table: str, row_id: str,
                values: Mapping[str, object]) -> None:
        db.execute(f"update {table} set {_assignments(values)} where id = ? and user_id = ?",
                   (*values.values(), row_id, self.user_id))


def _insert(db: sqlite3.Connection, table: str, values: Mapping[str, object],
            **computed: str) -> None:
    """Insert `values`, and `computed` columns from SQL expressions of our own."""
    db.execute(f"insert into {table} ({', '.join([*values, *computed])}) "
               f"values ({', '.join(['?' for _ in values] + list(computed.values()))})",
               tuple(values.values()))


def _assignments(columns) -> str:
    return ", ".join(f"{column} = ?" for column in columns)


class SQLiteProfileStore(_LocalFile):
    """The single local user's profile in `data_dir/switchboard.db`."""

    def _refusal(self, detail: str) -> str:
        for column, label in FIELD_LABELS.items():
            if column in detail:
                return (f"{label} is too long: the store keeps at most 1000 characters. "
                        "Nothing was saved.")
        return "The settings were refused by the store (a value is too long). Nothing was saved."

    def _row(self, db: sqlite3.Connection) -> Profile:
        row = db.execute("select * from profiles where user_id = ?", (self.user_id,)).fetchone()
        return Profile.from_row(dict(row)) if row else Profile()

    def load(self) -> Profile:
        with self._opened("read") as db:
            return self._row(db)

    def update(self, changes: Mapping[str, str], expected: Mapping[str, str] | None) -> Profile:
        """Write `changes` if each changed column still holds its `expected` value, under the
        write lock; `expected` None writes unconditionally. See ProfileStore.update."""
        unknown = set(changes) - set(PROFILE_FIELDS)
        if unknown:  # column names are put into the SQL: only ours
            raise ValueError(f"not profile fields: {sorted(unknown)}")
        if not changes:
            return self.load()
        names = list(changes)
        if self.generation != self._written_in:  # the file was made again since:
            expected = None  # what the page read is gone with it; keep what it shows
        checks = [] if expected is None else names
        sql = (f"update profiles set {_assignments(names)}, updated_at = datetime('now') "
               "where user_id = ?" + "".join(f" and {c} is ?" for c in checks))
        params = (*(changes[c] for c in names), self.user_id,
                  *(expected[c] for c in checks))
        with self._writing() as db:
            # The row a new user has: every field empty, as Profile() reads.
            db.execute("insert into profiles (user_id) values (?) "
                       "on conflict (user_id) do nothing", (self.user_id,))
            if db.execute(sql, params).rowcount == 0:
                raise ProfileChanged()
            stored = self._row(db)
        self._written_in = self.generation
        return stored


# ---------------------------------------------------------------- connections

# The Connection fields that are columns of the `connections` table (both backends).
CONNECTION_COLUMNS = ("name", "kind", "base_url", "api_key", "headers", "enabled", "models",
                      "default_model", "quirks")


def connection_from_row(row: Mapping) -> Connection:
    """A stored connection (secret fields as stored, i.e. ciphertext) from a row of either
    backend, `models` and `quirks` given as lists."""
    kind = row["kind"]
    return Connection(
        name=row["name"], kind=kind, base_url=row["base_url"] or "",
        api_key=row["api_key"] or "", headers=row["headers"] or "",  # one ciphertext string
        enabled=bool(row["enabled"]), models=tuple(row["models"] or ()),
        default_model=row["default_model"] or "", quirks=frozenset(row["quirks"] or ()),
        needs_key=KINDS[kind].needs_key if kind in KINDS else False,
        id=str(row["id"]), origin="user", version=row["updated_at"],
    )


_AS_COLUMN = {"models": list, "quirks": sorted, "enabled": bool,
              "headers": lambda headers: headers or ""}  # no headers: () or ""


def connection_columns(values: Mapping[str, object]) -> dict[str, object]:
    """Connection field -> column value, for the fields given (models and quirks as lists)."""
    unknown = set(values) - set(CONNECTION_COLUMNS)
    if unknown:  # column names are put into the SQL and the request: only ours
        raise ValueError(f"not connection columns: {sorted(unknown)}")
    return {name: _AS_COLUMN[name](value) if name in _AS_COLUMN else value
            for name, value in values.items()}


def stored_columns(connection: Connection) -> dict[str, object]:
    """Every column of a new row, from a connection in its stored form."""
    return connection_columns({c: getattr(connection, c) for c in CONNECTION_COLUMNS})


_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"  # the stores' own form: UTC, microseconds


def _read_time(text: str | None) -> datetime | None:
    """`text` as a time (UTC when it names no zone); None when empty or unreadable."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None
    except ValueError:
        return None
    if moment is not None and moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment


def _next_version(previous: str | None) -> str:
    """Now, as a row's new `updated_at`: always later than `previous`, even within one tick
    of the clock, so a compare-and-set never mistakes two writes for one."""
    now = datetime.now(timezone.utc)
    if (before := _read_time(previous)) is not None:
        now = max(now, before + timedelta(microseconds=1))
    return now.strftime(_TIME_FORMAT)


def given_time(text: str) -> str | None:
    """A time a caller gave (an import), in the stores' own form, or None."""
    moment = _read_time(text)
    return None if moment is None else moment.astimezone(timezone.utc).strftime(_TIME_FORMAT)


def _sqlite_values(columns: Mapping[str, object]) -> dict[str, object]:
    """Column values as SQLite keeps them: lists and dicts as JSON text, booleans as 0/1."""
    return {c: json.dumps(v) if isinstance(v, (list, dict)) else int(v) if isinstance(v, bool)
            else v for c, v in columns.items()}


def _from_sqlite(row: sqlite3.Row) -> dict[str, object]:
    """A row as PostgREST gives it: the JSON text of models, quirks and usage read."""
    return {column: json.loads(value) if column in _JSON_COLUMNS and value
            else value for column, value in dict(row).items()}


_JSON_COLUMNS = ("models", "quirks", "usage", "reply_ids", "labels")


class SQLiteConnectionStore(_LocalFile):
    """The local user's connections in `data_dir/switchboard.db`, in their stored form (secret
    fields already encrypted by core.store.keybox). See ConnectionStore."""

    what = "connections"

    def _refusal(self, detail: str) -> str:
        if "connections_limit" in detail:
            return too_many_connections()
        return connection_value_refused(detail)

    def _get(self, db: sqlite3.Connection, connection_id: str) -> sqlite3.Row | None:
        return db.execute("select * from connections where id = ? and user_id = ?",
                          (connection_id, self.user_id)).fetchone()

    def _refuse_taken_name(self, db: sqlite3.Connection, name: str, own_id: str) -> None:
        """Names are unique per user whatever their case (SQLite's lower() folds ASCII only):
        checked under the write lock, so the unique index never refuses one."""
        for other_id, other in db.execute("select id, name from connections where user_id = ?",
                                          (self.user_id,)):
            if other_id != own_id and other.lower() == name.lower():
                raise UserFacingError(name_taken(name))

    def list(self) -> list[Connection]:
        with self._opened("read") as db:
            rows = db.execute("select * from connections where user_id = ? "
                              "order by created_at, rowid", (self.user_id,))
            return [connection_from_row(_from_sqlite(row)) for row in rows]

    def add(self, connection: Connection) -> Connection:
        values = _sqlite_values(stored_columns(connection))
        connection_id = str(uuid.uuid4())
        now = _next_version(None)
        values.update(id=connection_id, user_id=self.user_id, created_at=now, updated_at=now)
        with self._writing() as db:
            self._refuse_taken_name(db, connection.name, connection_id)
            _insert(db, "connections", values)
            return connection_from_row(_from_sqlite(self._get(db, connection_id)))

    def update(self, connection_id: str, changes: Mapping[str, object],
               version: str | None) -> Connection:
        values = _sqlite_values(connection_columns(changes))
        with self._writing() as db:  # read, compare and write under the write lock
            row = self._get(db, connection_id)
            if row is None:
                raise ConnectionChanged(str(changes.get("name") or "This connection"), gone=True)
            if version is not None and row["updated_at"] != version:
                raise ConnectionChanged(row["name"])
            if values:
                if "name" in values:
                    self._refuse_taken_name(db, str(values["name"]), connection_id)
                values["updated_at"] = _next_version(row["updated_at"])
                self._update(db, "connections", connection_id, values)
            return connection_from_row(_from_sqlite(self._get(db, connection_id)))

    def delete(self, connection_id: str) -> None:
        with self._opened("save") as db:
            db.execute("delete from connections where id = ? and user_id = ?",
                       (connection_id, self.user_id))

    def learn(self, connection_id: str, quirk: str) -> None:
        """Add `quirk`, leaving `updated_at` (the version an open form compares) as it is."""
        with self._writing() as db:
            row = self._get(db, connection_id)
            known = set(json.loads(row["quirks"])) if row is not None else {quirk}
            if quirk not in known:
                db.execute("update connections set quirks = ? where id = ? and user_id = ?",
                           (json.dumps(sorted(known | {quirk})), connection_id, self.user_id))


# ---------------------------------------------------------------- chats and messages

# Every Chat and Message field is a column, in both backends, but a message's attachments:
# rows of their own.
CHAT_COLUMNS = tuple(f.name for f in fields(Chat))
CHAT_WRITES = ("title", "connection_id", "model", "system_prompt", "temperature",
               "current_id", "pinned", "max_tokens", "context_window")  # what save_chat writes
CHAT_WRITES = (*CHAT_WRITES, "folder")  # filed by the user, as pinned
MESSAGE_COLUMNS = tuple(f.name for f in fields(Message) if f.name != "attachments")
MESSAGE_CHANGES = ("content", "model_label", "status", "error", "reasoning", "usage")
ATTACHMENT_COLUMNS = ("id", "kind", "name", "mime", "data", "text", "size", "width", "height")


def attachment_rows(message: Message) -> list[dict[str, object]]:
    """The rows of a new message's attachments, in its order, without their owner."""
    return [{**storable({column: getattr(attachment, column)
                         for column in ATTACHMENT_COLUMNS if column != "data"}),
             "data": bytes(attachment.data), "message_id": message.id,
             "chat_id": message.chat_id, "position": position}
            for position, attachment in enumerate(message.attachments)]


def attachment_from_row(row: Mapping) -> Attachment:
    """An attachment from a row of either backend, `data` given as bytes."""
    return Attachment(**{column: row[column] for column in ATTACHMENT_COLUMNS})


def with_attachments(messages: list[Message], rows: list[Mapping]) -> list[Message]:
    """`messages` each holding its attachments among `rows` (a message_id, a position each)."""
    held: dict[str, list[Mapping]] = {}
    for row in rows:
        held.setdefault(str(row["message_id"]), []).append(row)
    return [message.with_changes(attachments=tuple(
                attachment_from_row(row) for row in sorted(
                    held[message.id], key=lambda row: row["position"])))
            if message.id in held else message for message in messages]


def chat_from_row(row: Mapping) -> Chat:
    temperature = row["temperature"]
    return Chat(**{**{column: row[column] for column in CHAT_COLUMNS},
                   "temperature": None if temperature is None else float(temperature),  # 2 -> 2.0
                   "pinned": bool(row["pinned"])})  # SQLite's 0 or 1


def message_from_row(row: Mapping) -> Message:
    """A stored message from a row of either backend, `usage` given as a dict or None."""
    return Message(**{column: row[column] for column in MESSAGE_COLUMNS})


def reply_state(row: Mapping, lease_seconds: float) -> ReplyState:
    """A reply's state from a row of either backend: its status, the characters stored, its
    stop request, and `quiet_seconds` since its heartbeat, by the database's clock."""
    return ReplyState(status=row["status"], content_length=int(row["content_length"]),
                      reasoning_length=int(row["reasoning_length"]),
                      stop_requested=bool(row["stop_requested"]),
                      alive=float(row["quiet_seconds"]) <= lease_seconds)


def offset(characters: int) -> int:
    """An offset into a message's text as both backends read it: 0 at least."""
    return max(int(characters), 0)


NUL_STAND_IN = "\ufffd"  # PostgreSQL's text cannot hold U+0000: both backends store this
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def storable_text(text: str) -> str:
    """`text` as both backends keep it: a NUL character (PostgreSQL's text cannot hold it) and
    a lone surrogate (UTF-8 cannot: a server's broken JSON escape) each become U+FFFD, one
    character for one, so offsets into the stored text are offsets into `text`."""
    text = text.replace("\x00", NUL_STAND_IN)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = _LONE_SURROGATE.sub(NUL_STAND_IN, text)
    return text


def storable(values: Mapping[str, object]) -> dict[str, object]:
    """`values` as both backends keep them (see storable_text), rather than a write failing
    on one backend only; a mapping (usage) a plain dict."""
    return {column: storable_text(value) if isinstance(value, str)
            else dict(value) if isinstance(value, Mapping) else value
            for column, value in values.items()}


def chat_writes(chat: Chat) -> dict[str, object]:
    return storable({column: getattr(chat, column) for column in CHAT_WRITES})


def message_writes(message: Message) -> dict[str, object]:
    """Every column of a new message row but its time (the store's) and owner."""
    return storable({column: getattr(message, column) for column in MESSAGE_COLUMNS
                     if column != "created_at"})


def message_changes(changes: Mapping[str, object]) -> dict[str, object]:
    unknown = set(changes) - set(MESSAGE_CHANGES)
    if unknown:  # column names are put into the SQL and the request: only ours
        raise ValueError(f"not message changes: {sorted(unknown)}")
    return storable(changes)


COMPARISON_COLUMNS = tuple(f.name for f in fields(Comparison))


def comparison_refusal(comparison: Comparison) -> str | None:
    """The constraint a comparison breaks on its own (both backends refuse it the same way,
    before writing), or None."""
    replies, labels = comparison.reply_ids, comparison.labels
    if not MIN_COMPARED <= len(replies) <= MAX_COMPARED:
        return "comparisons_replies"
    if len(labels) != len(replies):
        return "comparisons_labels_count"
    if any(len(label) > MAX_MODEL_LABEL_LENGTH for label in labels):
        return "comparisons_labels_length"
    if comparison.picked_id is not None and comparison.picked_id not in replies:
        return "comparisons_picked_among_replies"
    if comparison.tie and comparison.picked_id is not None:
        return "comparisons_picked_or_tie"
    if len(set(replies)) < len(replies) or not all(
            _is_app_uuid(value) for value in (comparison.id, comparison.message_id, *replies)):
        return "comparisons_ids"
    return None


def _is_app_uuid(value: object) -> bool:
    try:
        return str(uuid.UUID(str(value))) == value
    except ValueError:
        return False


def comparison_writes(comparison: Comparison) -> dict[str, object]:
    """Every column of a new comparison row but its times and owner (lists as lists)."""
    refused = comparison_refusal(comparison)
    if refused:
        raise UserFacingError(chat_value_refused(refused))
    return {"id": comparison.id, "chat_id": comparison.chat_id,
            "message_id": comparison.message_id, "reply_ids": list(comparison.reply_ids),
            "labels": [storable_text(label) for label in comparison.labels],
            "blind": comparison.blind, "picked_id": comparison.picked_id,
            "tie": comparison.tie}


def comparison_from_row(row: Mapping) -> Comparison:
    """A stored comparison from a row of either backend, its lists given as lists."""
    picked = row["picked_id"]
    return Comparison(
        id=str(row["id"]), chat_id=str(row["chat_id"]), message_id=str(row["message_id"]),
        reply_ids=tuple(str(i) for i in row["reply_ids"]), labels=tuple(row["labels"]),
        blind=bool(row["blind"]), picked_id=None if picked is None else str(picked),
        tie=bool(row["tie"]), created_at=row["created_at"] or "",
        decided_at=row["decided_at"] or "")


def search_words(query: str) -> list[str]:
    """The words of a search as typed; a "word" of punctuation alone finds nothing in either
    backend's index, so it is left out rather than made to match nothing."""
    return [word for word in query.replace("\x00", " ").split()
            if any(c.isalnum() for c in word)]


_CHAT_SELECT = f"select {', '.join(CHAT_COLUMNS)} from chats"
_MESSAGE_SELECT = f"select {', '.join(MESSAGE_COLUMNS)} from messages"
_ATTACHMENT_SELECT = (f"select message_id, position, {', '.join(ATTACHMENT_COLUMNS)}"
                      " from attachments")
_COMPARISON_SELECT = f"select {', '.join(COMPARISON_COLUMNS)} from comparisons"
_NOW = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"  # SQLite's clock, as the stores write times
# Seconds since a reply's heartbeat, or its creation when written before heartbeats.
_QUIET_SECONDS = ("(julianday('now') - julianday(coalesce(heartbeat_at, created_at)))"
                  " * 86400.0")
# A reply's state (core.history.model.ReplyState) as reply_state reads it.
_REPLY_STATE = ("status, length(content) as content_length, "
                "length(reasoning) as reasoning_length, stop_requested, "
                f"{_QUIET_SECONDS} as quiet_seconds")


# The sum of one whole number of the replies' usage (another kind of value counts 0).
_TOKENS = ("coalesce(sum(case when json_type(usage, '$.{name}') = 'integer'"
           " then json_extract(usage, '$.{name}') end), 0)")


class SQLiteChatStore(_LocalFile):
    """The local user's chats and messages in `data_dir/switchboard.db`. See ChatStore."""

    what = "chats"
    _refusal = staticmethod(chat_value_refused)

    def _chat(self, db: sqlite3.Connection, chat_id: str) -> Chat | None:
        row = db.execute(f"{_CHAT_SELECT} where id = ? and user_id = ?",
                         (chat_id, self.user_id)).fetchone()
        return chat_from_row(row) if row else None

    def _message(self, db: sqlite3.Connection, message_id: str) -> Message:
        row = db.execute(f"{_MESSAGE_SELECT} where id = ? and user_id = ?",
                         (message_id, self.user_id)).fetchone()
        if row is None:  # none, or another user's: never theirs to see or change
            raise UserFacingError(chat_value_refused(CHAT_GONE))
        attachments = db.execute(f"{_ATTACHMENT_SELECT} where message_id = ? and user_id = ?",
                                 (message_id, self.user_id)).fetchall()
        return with_attachments([message_from_row(_from_sqlite(row))], attachments)[0]

    def list_chats(self, limit: int = 50, before: tuple[str, str] | None = None, *,
                   pinned: bool | None = None, folder: str | None = None) -> list[Chat]:
        sql, params = f"{_CHAT_SELECT} where user_id = ?", [self.user_id]
        if pinned is not None:
            sql += " and pinned = ?"
            params.append(int(pinned))
        if folder is not None:
            sql += " and folder = ?"
            params.append(folder)
        if before is not None:
            sql += " and (updated_at, id) < (?, ?)"
            params += list(before)
        sql += " order by updated_at desc, id desc limit ?"
        with self._opened("read") as db:
            return [chat_from_row(row) for row in db.execute(sql, (*params, limit))]

    def get_chat(self, chat_id: str) -> Chat | None:
        with self._opened("read") as db:
            return self._chat(db, chat_id)

    def messages(self, chat_id: str) -> list[Message]:
        with self._opened("read") as db:
            rows = db.execute(f"{_MESSAGE_SELECT} where chat_id = ? and user_id = ? "
                              "order by created_at, seq", (chat_id, self.user_id))
            messages = [message_from_row(_from_sqlite(row)) for row in rows]
            attachments = db.execute(f"{_ATTACHMENT_SELECT} where chat_id = ? and user_id = ?",
                                     (chat_id, self.user_id)).fetchall()
            return with_attachments(messages, attachments)

    def save_chat(self, chat: Chat) -> Chat:
        values = _sqlite_values(chat_writes(chat))
        with self._writing() as db:
            stored = db.execute("select user_id, updated_at from chats where id = ?",
                                (chat.id,)).fetchone()
            now = _next_version(stored["updated_at"] if stored else None)
            if stored is None:  # an imported chat keeps its own times
                values.update(id=chat.id, user_id=self.user_id,
                              created_at=given_time(chat.created_at) or now,
                              updated_at=given_time(chat.updated_at) or now)
                _insert(db, "chats", values)
            elif stored["user_id"] != self.user_id:
                raise UserFacingError(chat_value_refused(CHAT_GONE))
            else:
                values["updated_at"] = now
                self._update(db, "chats", chat.id, values)
            return self._chat(db, chat.id)

    def add_message(self, message: Message) -> Message:
        values = _sqlite_values(message_writes(message))
        with self._writing() as db:
            if db.execute("select 1 from messages where id = ?", (message.id,)).fetchone() is None:
                chat = self._chat(db, message.chat_id)
                # Later than the chat's time: the message moves the chat up the list.
                values.update(user_id=self.user_id, created_at=given_time(
                    message.created_at) or _next_version(chat.updated_at if chat else None))
                _insert(db, "messages", values, heartbeat_at=_NOW)
                for row in attachment_rows(message):  # in the same transaction
                    _insert(db, "attachments", {**row, "user_id": self.user_id})
            return self._message(db, message.id)

    def update_message(self, message_id: str, changes: Mapping[str, object]) -> Message:
        """See ChatStore; a write leaving the message 'streaming' moves its heartbeat."""
        values = _sqlite_values(message_changes(changes))
        with self._opened("save") as db:
            if values:
                db.execute(f"update messages set {_assignments(values)}, heartbeat_at = case"
                           f" when coalesce(?, status) = 'streaming' then {_NOW}"
                           " else heartbeat_at end where id = ? and user_id = ?",
                           (*values.values(), values.get("status"), message_id, self.user_id))
            return self._message(db, message_id)

    def _reply_state(self, db: sqlite3.Connection, message_id: str,
                     lease_seconds: float) -> ReplyState | None:
        row = db.execute(f"select {_REPLY_STATE} from messages where id = ? and user_id = ?",
                         (message_id, self.user_id)).fetchone()
        return None if row is None else reply_state(row, lease_seconds)

    def append_reply(self, message_id: str, content_at: int, content: str,
                     reasoning_at: int, reasoning: str) -> ReplyState | None:
        # Only the columns that grow are written: a heartbeat leaves a long text in place.
        pieces = {column: storable_text(piece) for column, piece
                  in (("content", content), ("reasoning", reasoning)) if piece}
        growing = "".join(f"{column} = {column} || ?, " for column in pieces)
        with self._writing() as db:  # compared and appended under the write lock
            db.execute(f"update messages set {growing}heartbeat_at = {_NOW}"
                       " where id = ? and user_id = ? and status = 'streaming'"
                       " and length(content) = ? and length(reasoning) = ?",
                       (*pieces.values(), message_id, self.user_id, content_at, reasoning_at))
            return self._reply_state(db, message_id, REPLY_LEASE_SECONDS)

    def read_reply(self, message_id: str, content_at: int = 0, reasoning_at: int = 0,
                   lease_seconds: float = REPLY_LEASE_SECONDS
                   ) -> tuple[Message, ReplyState] | None:
        others = ", ".join(c for c in MESSAGE_COLUMNS if c not in ("content", "reasoning"))
        with self._opened("read") as db:
            row = db.execute(f"select {others}, substr(content, ? + 1) as content,"
                             f" substr(reasoning, ? + 1) as reasoning, {_REPLY_STATE}"
                             " from messages where id = ? and user_id = ?",
                             (offset(content_at), offset(reasoning_at), message_id,
                              self.user_id)).fetchone()
        if row is None:
            return None
        return message_from_row(_from_sqlite(row)), reply_state(row, lease_seconds)

    def request_stop(self, message_id: str) -> None:
        with self._opened("save") as db:
            db.execute("update messages set stop_requested = 1 where id = ? and user_id = ?",
                       (message_id, self.user_id))

    def settle_abandoned(self, chat_id: str, lease_seconds: float) -> list[str]:
        with self._writing() as db:  # one caller at a time: each id is settled once
            return [row["id"] for row in db.execute(
                "update messages set status = 'interrupted' where chat_id = ? and user_id = ?"
                f" and status = 'streaming' and {_QUIET_SECONDS} > ? returning id",
                (chat_id, self.user_id, max(float(lease_seconds), 0.0))).fetchall()]

    def delete_chat(self, chat_id: str) -> None:
        with self._writing() as db:  # the chat and its messages (a trigger) together
            db.execute("delete from chats where id = ? and user_id = ?", (chat_id, self.user_id))

    def delete_all(self) -> int:
        with self._writing() as db:
            return db.execute("delete from chats where user_id = ?", (self.user_id,)).rowcount

    def usage_totals(self) -> list[UsageTotal]:
        with self._opened("read") as db:
            rows = db.execute(f"""
                select model_label, count(*) as replies,
                    {_TOKENS.format(name="prompt_tokens")} as prompt_tokens,
                    {_TOKENS.format(name="completion_tokens")} as completion_tokens
                from messages where user_id = ? and role = 'assistant'
                group by model_label order by model_label""", (self.user_id,))
            return [UsageTotal(**dict(row)) for row in rows]

    def _comparison(self, db: sqlite3.Connection, comparison_id: str) -> Comparison:
        row = db.execute(f"{_COMPARISON_SELECT} where id = ? and user_id = ?",
                         (comparison_id, self.user_id)).fetchone()
        if row is None:  # another user's id: never theirs to see or change
            raise UserFacingError(chat_value_refused(CHAT_GONE))
        return comparison_from_row(_from_sqlite(row))

    def save_comparison(self, comparison: Comparison) -> Comparison:
        values = _sqlite_values(comparison_writes(comparison))
        with self._writing() as db:
            stored = db.execute("select user_id, picked_id, tie from comparisons where id = ?",
                                (comparison.id,)).fetchone()
            now = _next_version(None)
            if stored is None:
                if self._chat(db, comparison.chat_id) is None:
                    raise UserFacingError(chat_value_refused(CHAT_GONE))
                decided = comparison.decided and (given_time(comparison.decided_at) or now)
                values.update(user_id=self.user_id, decided_at=decided or None,
                              created_at=given_time(comparison.created_at) or now)
                _insert(db, "comparisons", values)
            elif (stored["user_id"] == self.user_id and comparison.decided
                  and stored["picked_id"] is None and not stored["tie"]):
                db.execute("update comparisons set picked_id = ?, tie = ?, decided_at = ?"
                           " where id = ? and user_id = ?",
                           (values["picked_id"], values["tie"], now, comparison.id,
                            self.user_id))
            return self._comparison(db, comparison.id)

    def comparisons(self, chat_id: str) -> list[Comparison]:
        with self._opened("read") as db:
            rows = db.execute(f"{_COMPARISON_SELECT} where chat_id = ? and user_id = ?"
                              " order by created_at, seq", (chat_id, self.user_id))
            return [comparison_from_row(_from_sqlite(row)) for row in rows]

    def blind_verdicts(self) -> list[Comparison]:
        with self._opened("read") as db:
            rows = db.execute(f"{_COMPARISON_SELECT} where user_id = ? and blind = 1"
                              " and (picked_id is not null or tie = 1)"
                              " order by created_at, seq", (self.user_id,))
            return [comparison_from_row(_from_sqlite(row)) for row in rows]

    def search(self, query: str, limit: int = 20) -> list[Found]:
        words = search_words(query)
        if not words or limit <= 0:
            return []
        # Every word quoted: FTS5 then reads punctuation ("-", "*", ":", "OR") as plain text,
        # and the quoted words must all match, in any order.
        match = " ".join('"' + word.replace('"', '""') + '"' for word in words)
        with self._opened("read") as db:
            rows = db.execute(
                f"""
                with matched(chat_id) as (
                    select m.chat_id from messages_fts join messages m
                        on m.seq = messages_fts.rowid
                    where messages_fts match :match and m.user_id = :user
                    union
                    select c.id from chats_fts join chats c on c.seq = chats_fts.rowid
                    where chats_fts match :match and c.user_id = :user
                )
                -- the snippet: a piece of the newest matching message, or the title
                select {', '.join(CHAT_COLUMNS)}, coalesce((
                    select snippet(messages_fts, 0, '', '', '…', 20) from messages m
                    join messages_fts on messages_fts.rowid = m.seq
                    where m.chat_id = chats.id and messages_fts match :match
                    order by m.created_at desc limit 1), title) as snippet
                from chats where user_id = :user and id in (select chat_id from matched)
                order by updated_at desc, id desc limit :limit
                """,
                {"match": match, "user": self.user_id, "limit": limit},
            )
            return [Found(chat_from_row(row), row["snippet"]) for row in rows]

    # ---- folders, and search as the user types

    def folders(self) -> list[tuple[str, int]]:
        with self._opened("read") as db:
            rows = db.execute("select folder, count(*) from chats where user_id = ?"
                              " and folder <> '' group by folder order by folder",
                              (self.user_id,))
            return [(row[0], row[1]) for row in rows]

    def move_folder(self, name: str, to: str) -> int:
        values = chat_writes(Chat(folder=to))
        with self._writing() as db:
            return db.execute("update chats set folder = ? where user_id = ? and folder = ?",
                              (values["folder"], self.user_id, name)).rowcount

    def count_found(self, query: str) -> int:
        if not (match := typed_match(query)):
            return 0
        with self._opened("read") as db:
            found = _FOUND_MANY if _many_hits(db, match) else _FOUND_FEW
            return db.execute(f"select count(*) from chats c where {found}",
                              {"match": match, "user": self.user_id}).fetchone()[0]

    def search_page(self, query: str, limit: int = 20, offset: int = 0) -> list[Found]:
        if not (match := typed_match(query)) or limit <= 0:
            return []
        start, end = SNIPPET_MARKS
        with self._opened("read") as db:
            page = _PAGE_MANY if _many_hits(db, match) else _PAGE_FEW
            rows = db.execute(
                f"""
                with {page}
                select {', '.join(CHAT_COLUMNS)},
                    (select id from messages where seq = page.hit) as message_id,
                    coalesce((select snippet(messages_fts, 0, :start, :end, '…', 20)
                              from messages_fts
                              where messages_fts match :match and rowid = page.hit),
                             (select highlight(chats_fts, 0, :start, :end) from chats_fts
                              where chats_fts match :match and rowid = page.seq),
                             title) as snippet
                from page order by updated_at desc, id desc
                """,
                {"match": match, "user": self.user_id, "limit": limit,
                 "offset": max(offset, 0), "start": start, "end": end},
            )
            return [Found(chat_from_row(row), row["snippet"], row["message_id"])
                    for row in rows]

    def add_whole_chats(self, whole: Sequence[WholeChat]) -> list[str]:
        """See ChatStore: every chat not yet stored, in one transaction."""
        added = []
        with self._writing() as db:
            for chat, messages, comparisons in whole:
                if db.execute("select 1 from chats where id = ?", (chat.id,)).fetchone():
                    continue  # the user's (left as it is) or another's (never touched)
                now = _next_version(None)
                values = _sqlite_values(chat_writes(chat))
                values.update(id=chat.id, user_id=self.user_id,
                              created_at=given_time(chat.created_at) or now,
                              updated_at=given_time(chat.updated_at) or now)
                _insert(db, "chats", values)
                last = values["updated_at"]
                for message in messages:
                    row = _sqlite_values(message_writes(message))
                    last = given_time(message.created_at) or _next_version(last)
                    row.update(user_id=self.user_id, created_at=last)
                    _insert(db, "messages", row, heartbeat_at=_NOW)
                    for file in attachment_rows(message):
                        _insert(db, "attachments", {**file, "user_id": self.user_id})
                for comparison in comparisons:
                    row = _sqlite_values(comparison_writes(comparison))
                    decided = comparison.decided and (given_time(comparison.decided_at) or now)
                    row.update(user_id=self.user_id, decided_at=decided or None,
                               created_at=given_time(comparison.created_at) or now)
                    _insert(db, "comparisons", row)
                added.append(chat.id)
        return added


def typed_match(query: str) -> str:
    """An FTS5 query for a search as typed so far: every word quoted (punctuation is plain
    text), all of them to match, the last one as the start of a word ("" finds nothing)."""
    words = search_words(query)
    quoted = ['"' + word.replace('"', '""') + '"' for word in words]
    return " ".join(quoted) + "*" if quoted else ""


# The user's chats (as `c`) that match :match in their title or a message, asked one of two
# ways with the same answer:
# - few messages match (a whole word): the chats of those messages;
# - many match (the start of a word, "q"): chat by chat, newest first, each stopping at its
#   first matching message; going through every match would take longer.
# `_HITS`, the matching messages, is read once per statement wherever it is named.
_HITS = "(select rowid from messages_fts where messages_fts match :match)"
_IN_TITLE = "seq in (select rowid from chats_fts where chats_fts match :match)"
_FOUND_FEW = f"""c.user_id = :user and (
    c.id in (select m.chat_id from messages m where m.seq in {_HITS}) or c.{_IN_TITLE})"""
_FOUND_MANY = f"""c.user_id = :user and (
    exists (select 1 from messages m where m.chat_id = c.id and m.seq in {_HITS})
    or c.{_IN_TITLE})"""
FEW_HITS = 3_000  # messages (all users'): about where the two ways take as long
# A page of them, newest first, as `page`, with `hit`: the seq of its newest matching message.
_NEWEST_HIT = ("(select m.seq from messages m where m.chat_id = {chat}.id and m.seq in"
               f" {_HITS} order by m.created_at desc, m.seq desc limit 1)")
_PAGE_FEW = f"""found as (
        select * from chats c where {_FOUND_FEW}
        order by updated_at desc, id desc limit :limit offset :offset),
    page as (select found.*, {_NEWEST_HIT.format(chat="found")} as hit from found)"""
_PAGE_MANY = f"""newest as (
        select c.*, {_NEWEST_HIT.format(chat="c")} as hit from chats c
        where c.user_id = :user),
    page as (
        select * from newest where hit is not null or {_IN_TITLE}
        order by updated_at desc, id desc limit :limit offset :offset)"""


def _many_hits(db: sqlite3.Connection, match: str) -> bool:
    """Whether `match` is in FEW_HITS messages or more (counting stops there)."""
    return db.execute("select count(*) from (select 1 from messages_fts"
                      " where messages_fts match ? limit ?)", (match, FEW_HITS)).fetchone()[0] \
        >= FEW_HITS


# SQLite's primary result codes (https://sqlite.org/rescode.html) for what can go wrong
# around the file, rather than in our SQL.
_KIND_OF_CODE = {
    sqlite3.SQLITE_BUSY: "busy",
    sqlite3.SQLITE_LOCKED: "busy",
    sqlite3.SQLITE_CORRUPT: "damaged",
    sqlite3.SQLITE_NOTADB: "damaged",
    sqlite3.SQLITE_READONLY: "read_only",
    sqlite3.SQLITE_FULL: "full",
    sqlite3.SQLITE_PERM: "no_access",
    sqlite3.SQLITE_AUTH: "no_access",
}
_KIND_OF_ERRNO = {
    errno.EROFS: "read_only",
    errno.ENOSPC: "full",
    errno.EDQUOT: "full",
    errno.EACCES: "no_access",
    errno.EPERM: "no_access",
}


# What SQLite and its module say when a statement or a call is wrong (our SQL, or the sqlite3
# API used wrongly), rather than about the file or the disk.
_OUR_CODES = {sqlite3.SQLITE_ERROR, sqlite3.SQLITE_MISUSE, sqlite3.SQLITE_RANGE}
_OUR_ERRORS = (sqlite3.ProgrammingError, sqlite3.InterfaceError, sqlite3.NotSupportedError)


def _code(exc: BaseException) -> int:
    """SQLite's primary result code; 0 for an error carrying none (sqlite3's own, OSError)."""
    return (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF


def _kind(exc: BaseException, folder: Path) -> str:
    """What went wrong: one of StoreUnavailable's kinds, or "disk_error"."""
    # An OSError has no SQLite code (0), an sqlite3.Error no errno.
    kind = _KIND_OF_CODE.get(_code(exc)) or _KIND_OF_ERRNO.get(getattr(exc, "errno", None))
    if kind:
        return kind
    # SQLite says only "unable to open" or "disk I/O error": ask the file system itself.
    try:
        if os.statvfs(folder).f_flag & os.ST_RDONLY:
            return "read_only"
    except OSError:
        return "no_access"  # the folder cannot even be looked at
    path = folder / DB_FILENAME
    if not os.access(folder, os.W_OK | os.X_OK) or (
            path.exists() and not os.access(path, os.R_OK | os.W_OK)):
        return "no_access"
    return "disk_error"


# What a local store keeps, said when it cannot be read or saved, and how a failed write is
# retried: settings and connections have a Save button; a chat is written again by itself.
_WHAT = {"settings": ("Your settings could not be read", "Nothing was saved", "save again"),
         "connections": ("Your connections could not be read", "Nothing was saved", "save again"),
         "chats": ("Your chats could not be read", "The chat on screen is not saved yet",
                   "the chat on screen is saved by itself at your next action")}


def store_unavailable(exc: BaseException, path: Path, doing: str, what: str) -> StoreUnavailable:
    """The error for a failure opening, reading or saving `path` (`what`: the store's data, see
    _WHAT); the raw error is logged."""
    folder = path.parent
    kind = _kind(exc, folder)
    logger.warning("Local store %s failed while doing %s (%s): %s", path, doing, kind, exc)
    unread, unsaved, retry = _WHAT[what]
    failed = {"open": "Switchboard cannot start", "read": unread, "save": unsaved}[doing]
    again = retry if doing == "save" else "reload the page"
    messages = {
        "busy": f"Your data is busy (another window is saving). {failed}; "
                "try again in a moment.",
        "damaged": f"The data file {path} is damaged; it was left as it is. {failed}. "
                   "Restore it from a backup, or move it elsewhere and reload to start "
                   "with empty settings.",
        "read_only": f"The data folder {folder} is read-only. {failed}. "
                     f"Make it writable, then {again}.",
        "full": f"The disk holding the data folder {folder} is full. {failed}. "
                f"Free some space, then {again}.",
        "no_access": f"Switchboard is not allowed to use the data file {path}. {failed}. "
                     f"Check the permissions of the file and its folder, then {again}.",
        "disk_error": f"A disk error stopped Switchboard using the data file {path}; it was "
                      f"left as it is. {failed}. Try again; if it keeps failing, check the disk.",
    }
    return StoreUnavailable(messages[kind], kind)
