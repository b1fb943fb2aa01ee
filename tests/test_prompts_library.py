"""Saved prompts without a store: their `{{variables}}` found and filled, the rules a prompt
keeps, the administrator's read from secrets, and the JSON file out and in."""

from __future__ import annotations

import json
import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.config import load_settings
from core.failures import Misconfigured
from core.prompts.library import (
    MAX_PROMPT_NAME,
    MAX_PROMPTS,
    PromptRefused,
    SavedPrompt,
    checked,
    offered,
    operator_prompts,
)
from core.prompts.transfer import from_json, plan_import, to_json
from core.prompts.variables import MAX_VARIABLE_NAME, fill, variables

# A variable's name: any characters but braces and line breaks, no blank at either end.
names = st.text(st.characters(exclude_characters="{}\r\n", exclude_categories=("Cs",)),
                min_size=1, max_size=MAX_VARIABLE_NAME).map(str.strip).filter(
    lambda n: n and len(n) <= MAX_VARIABLE_NAME and n == n.strip(" \t"))
plain = st.text(st.characters(exclude_characters="{}", exclude_categories=("Cs",)), max_size=30)
values = st.text(st.characters(exclude_categories=("Cs",)), max_size=30)


@given(st.lists(st.tuples(plain, names), max_size=6), plain, st.data())
def test_filling_then_reading_back_gives_each_value_in_its_place(pieces, tail, data):
    """Property: a text of plain pieces and `{{name}}`s lists each name once, in order, and
    filled it is the plain pieces with each variable's value between them, whatever the value
    holds (a value holding `{{name}}` is never filled again)."""
    template = "".join(f"{text}{{{{{name}}}}}" for text, name in pieces) + tail
    wanted = list(dict.fromkeys(name for _, name in pieces))
    given_values = {name: data.draw(st.one_of(values, st.just(f"{{{{{name}}}}}")))
                    for name in wanted}

    assert variables(template) == wanted
    assert fill(template, given_values) == "".join(
        text + given_values[name] for text, name in pieces) + tail


@given(names, values, st.sampled_from(["", " ", "  ", "\t"]))
def test_a_name_with_odd_characters_is_one_variable(name, value, blank):
    """Property: `{{name}}`, blanks around the name or not, is the variable `name`, whatever
    characters the name holds, and fills with its value."""
    text = f"before {{{{{blank}{name}{blank}}}}} after"
    assert variables(text) == [name]
    assert fill(text, {name: value}) == f"before {value} after"


NOT_VARIABLES = ["{{", "}}", "{", "}", "{{}}", "{{ }}", "{{\t}}", "{{\n}}", "\n", " ",
                 "{{" + "x" * (MAX_VARIABLE_NAME + 1) + "}}", "{{a\nb}}", "{{a{b}}"]


@given(st.lists(st.sampled_from(NOT_VARIABLES), max_size=12), st.dictionaries(names, values))
def test_braces_that_are_not_a_variable_stay_as_typed(pieces, given_values):
    """Property: a text whose `{{` never opens a name (empty, blank, too long, broken by a line
    or another brace, never closed) has no variables, and filling leaves it as it is."""
    text = "".join(pieces)
    assert variables(text) == []
    assert fill(text, given_values) == text


def test_a_variable_without_a_value_stays_and_each_is_listed_once():
    text = "Write {{tone}} about {{ topic }}, {{tone}} again; {{{x}}} and {{y}"
    assert variables(text) == ["tone", "topic", "x"]
    assert fill(text, {"tone": "gently"}) == (
        "Write gently about {{ topic }}, gently again; {{{x}}} and {{y}")


def test_a_prompt_is_refused_with_every_problem_said():
    with pytest.raises(PromptRefused) as refused:
        checked(SavedPrompt(name=" ", text="", temperature=3))
    said = str(refused.value)
    assert "name must be 1 to 100" in said and "needs some text" in said
    assert "temperature must be a number from 0 to 2" in said and "Nothing was saved" in said
    assert checked(SavedPrompt(name="  Fix  ", text="t", temperature=0)).name == "Fix"
    with pytest.raises(PromptRefused, match="name must be"):
        checked(SavedPrompt(name="n" * (MAX_PROMPT_NAME + 1), text="t"))
    with pytest.raises(PromptRefused, match="temperature"):
        checked(SavedPrompt(name="n", text="t", temperature=float("nan")))


def test_the_users_prompts_come_first_and_hide_the_administrators_of_the_same_name():
    own = [SavedPrompt("zeta", "z", id="1"), SavedPrompt("Review", "mine", id="2")]
    admins = [SavedPrompt("review", "theirs", origin="operator", id="operator:r"),
              SavedPrompt("Apply", "a", origin="operator", id="operator:a")]
    assert [p.id for p in offered(own, admins)] == ["2", "1", "operator:a"]


# ---- the administrator's prompts

def test_the_administrators_prompts_are_read_from_secrets_or_the_environment(caplog):
    table = {"review": {"name": "Code review", "text": "Review {{code}}", "model": "m · s",
                        "temperature": 0.2},
             "bare": {"text": "Named by its key"},
             "broken": {"name": "No text"},
             "odd": {"text": "t", "colour": "red"},
             "typed": {"text": 3}}
    with caplog.at_level(logging.WARNING):
        found = operator_prompts(table)
    assert [(p.name, p.id, p.origin, p.read_only) for p in found] == [
        ("Code review", "operator:review", "operator", True),
        ("bare", "operator:bare", "operator", True)]
    assert found[0].variables == ["code"] and found[0].temperature == 0.2
    left_out = " ".join(r.getMessage() for r in caplog.records)
    for key in ("broken", "odd", "typed"):
        assert f"[prompts.{key}] is left out" in left_out

    from_secrets = load_settings(secrets={"prompts": table}, environ={}, dotenv_path=None)
    assert [p.name for p in from_secrets.operator_prompts] == ["Code review", "bare"]
    from_env = load_settings(secrets={}, environ={"SWITCHBOARD_PROMPTS": (
        '[prompts.hello]\nname = "Hello"\ntext = "Say hello to {{who}}"\n')}, dotenv_path=None)
    assert [(p.name, p.variables) for p in from_env.operator_prompts] == [("Hello", ["who"])]
    assert load_settings(secrets={}, environ={}, dotenv_path=None).operator_prompts == ()


def test_prompts_that_are_not_toml_stop_the_app_loudly():
    with pytest.raises(Misconfigured, match="SWITCHBOARD_PROMPTS is not valid TOML"):
        load_settings(secrets={}, environ={"SWITCHBOARD_PROMPTS": "[prompts.x\ntext="},
                      dotenv_path=None)


# ---- the JSON file

prompts = st.builds(
    SavedPrompt, name=st.text(st.characters(exclude_categories=("Cs", "Cc")), min_size=1,
                              max_size=MAX_PROMPT_NAME).map(str.strip).filter(bool),
    text=st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=200).filter(
        str.strip),
    model=st.text(max_size=20), system_prompt=st.text(max_size=40),
    temperature=st.one_of(st.none(), st.floats(0, 2)))


@given(st.lists(prompts, max_size=8))
def test_an_exported_file_imports_as_the_same_prompts(library):
    """Property: to_json then from_json gives back every prompt, field for field."""
    assert from_json(to_json(library).encode()) == [
        SavedPrompt(p.name, p.text, p.model, p.system_prompt, p.temperature) for p in library]


@given(st.lists(prompts, max_size=8, unique_by=lambda p: p.name.casefold()),
       st.lists(prompts, max_size=8))
def test_importing_a_file_twice_adds_nothing_and_keeps_names_unique(library, file):
    """Property: after one import, importing the same file again adds nothing; names stay
    unique whatever their case, and every prompt of the file is in the library."""
    first = plan_import(library, file)
    after = [*library, *first.added]
    assert plan_import(after, file).added == []
    assert len({p.name.casefold() for p in after}) == len(after)
    assert all(len(p.name) <= MAX_PROMPT_NAME for p in after)
    kept = {(p.text, p.model, p.system_prompt, p.temperature) for p in after}
    assert all((p.text, p.model, p.system_prompt, p.temperature) in kept for p in file)


@pytest.mark.parametrize("data, said", [
    (b"not json", "not a JSON file"),
    (b"\xff\xfe", "not a JSON file"),
    (b'{"chats": []}', "not a file of saved prompts"),
    (b'{"format": "switchboard-prompts", "prompts": {}}', "is not a list"),
    (json.dumps([{"name": "ok", "text": "fine"}, {"name": "", "text": "x"}]).encode(),
     "prompt 2"),
    (json.dumps([{"name": "a", "text": "t", "temperature": "hot"}]).encode(),
     "“temperature” must be a number"),
    (json.dumps(["just text"]).encode(), "prompt 1: it is not an object"),
    (json.dumps([{"name": f"p{i}", "text": "t"} for i in range(MAX_PROMPTS + 1)]).encode(),
     f"at most {MAX_PROMPTS}"),
])
def test_a_bad_file_is_refused_whole_saying_why(data, said):
    with pytest.raises(PromptRefused) as refused:
        from_json(data)
    assert said in str(refused.value)
    assert str(refused.value).startswith("This file cannot be imported")
    assert str(refused.value).endswith("Nothing was imported.")


def test_a_file_that_would_pass_the_bound_is_refused_before_anything_is_stored():
    library = [SavedPrompt(f"p{i}", "t") for i in range(MAX_PROMPTS - 1)]
    assert len(plan_import(library, [SavedPrompt("new", "t")]).added) == 1
    with pytest.raises(PromptRefused, match=f"at most {MAX_PROMPTS}"):
        plan_import(library, [SavedPrompt("new", "t"), SavedPrompt("newer", "t")])


def test_a_taken_name_gets_a_number_and_the_summary_says_so():
    plan = plan_import([SavedPrompt("Fix", "mine")],
                       [SavedPrompt("fix", "theirs"), SavedPrompt("Fix", "mine"),
                        SavedPrompt("Fix", "third")])
    assert [p.name for p in plan.added] == ["fix (2)", "Fix (3)"]
    assert (plan.skipped, plan.renamed) == (1, 2)
    assert plan.summary == ("Imported 2 prompts. 2 had the name of a different prompt of "
                            "yours, so a number was added to the name. 1 you already had, "
                            "unchanged, was left as it is.")
