"""The LangGraph side: a one-node graph over MessagesState, checkpointed by AsyncPostgresSaver, grown turn by
turn on one thread. Run by bench/langgraph/.venv's Python (never the project's: LangGraph is no dependency
of threadstore), it prints its Run as JSON on stdout; progress goes to stderr.

Not type-checked by scripts/test: the project's virtualenv has no LangGraph to check it against.
"""

from __future__ import annotations

import argparse
import asyncio
from importlib.metadata import version
from typing import Any

import measure
import psycopg
import words
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.graph.state import CompiledStateGraph
from results import Run

# One conversation, as an agent app keys it: every turn continues the same thread.
CONFIG: RunnableConfig = {"configurable": {"thread_id": "lg-compare"}}
PACKAGES = ("langgraph", "langgraph-checkpoint-postgres", "langgraph-checkpoint", "langchain-core", "psycopg")


def build_graph(checkpointer: AsyncPostgresSaver, constant_reply: bool) -> CompiledStateGraph[Any, Any, Any, Any]:
    async def reply(state: MessagesState) -> dict[str, list[AIMessage]]:
        # No LLM: a reply of the same length as threadstore's, picked by the turn (the user's message is the
        # 2*turn-1'th), so both systems store exactly the same conversation.
        turn = (len(state["messages"]) + 1) // 2
        return {"messages": [AIMessage(words.assistant_reply(turn, constant_reply))]}

    builder = StateGraph(MessagesState)
    builder.add_node("reply", reply)
    builder.add_edge(START, "reply")
    builder.add_edge("reply", END)
    return builder.compile(checkpointer=checkpointer)


class PsycopgProbe:
    def __init__(self, connection: psycopg.AsyncConnection[Any]) -> None:
        self.connection = connection

    async def value(self, sql: str) -> Any:
        # Bytes: psycopg types a query as a literal string, and probes.py builds some (from integers only).
        cursor = await self.connection.execute(sql.encode())
        row = await cursor.fetchone() if cursor.description else None
        return row[0] if row else None

    async def rows(self, sql: str) -> list[tuple[Any, ...]]:
        cursor = await self.connection.execute(sql.encode())
        return list(await cursor.fetchall())


class LangGraphSystem:
    def __init__(self, graph: CompiledStateGraph[Any, Any, Any, Any], probe: PsycopgProbe) -> None:
        self.graph = graph
        self.probe = probe  # its own connection: the saver's is the one measured

    async def append_turn(self, turn: int) -> None:
        # LangGraph's default durability ("async") still saves every checkpoint before ainvoke returns.
        await self.graph.ainvoke({"messages": [HumanMessage(words.user_message(turn))]}, CONFIG)

    async def last_messages(self, count: int) -> list[str]:
        # An app shows the end of the conversation from the latest checkpoint's state: the whole list is
        # loaded and deserialized, then sliced.
        state = await self.graph.aget_state(CONFIG)
        return [str(message.content) for message in state.values["messages"][-count:]]


async def main(args: argparse.Namespace) -> None:
    run = Run("LangGraph")
    run.info["versions"] = ", ".join(f"{name} {version(name)}" for name in PACKAGES)
    run.info["setup"] = (
        "StateGraph(MessagesState) with one node, in-process; AsyncPostgresSaver (one psycopg connection,"
        " autocommit) with LangGraph's default durability; one ainvoke per turn; read = aget_state"
    )
    async with (
        AsyncPostgresSaver.from_conn_string(args.dsn) as saver,
        await psycopg.AsyncConnection.connect(args.dsn, autocommit=True) as probe,
    ):
        await saver.setup()
        system = LangGraphSystem(build_graph(saver, args.constant_reply), PsycopgProbe(probe))
        await measure.run(system, run, args.turns, args.checkpoints, args.constant_reply)
    print(run.to_json())


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--dsn", required=True, help="postgresql:// URL of an empty database of LangGraph's own")
    p.add_argument("--turns", type=int, required=True)
    p.add_argument("--checkpoints", required=True, help="comma-separated turns")
    p.add_argument("--constant-reply", action="store_true")
    args = p.parse_args()
    args.checkpoints = measure.parse_checkpoints(args.checkpoints, args.turns)
    return args


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
