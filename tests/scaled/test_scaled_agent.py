"""scaled.agent: action projection and prompts; the offline tiny model/tokenizer of the scaled path."""

import pytest

from scaled.agent import project_action
from scaled.agent import build_prompt, followup_prompt, format_history

ADM = ["go to cabinet 1", "open fridge 1", "take mug 1 from countertop 1"]


# --------------------------------------------------------------------------- projection
def test_valid_answer_is_extracted():
    assert project_action("<think>mug first</think><action>take mug 1 from countertop 1</action>", ADM) == (
        "take mug 1 from countertop 1", True)


def test_case_and_spaces_map_to_the_admissible_spelling():
    assert project_action("<think>t</think><action>  Open   FRIDGE 1 </action>", ADM) == ("open fridge 1", True)


def test_missing_action_falls_back_to_last_30_chars_and_is_invalid():
    text = "<think>hmm</think> I would like to open the fridge now please"
    action, valid = project_action(text, ADM)
    assert not valid
    assert action == text[-30:].strip().lower()  # verl-agent's fallback


def test_missing_think_is_invalid_unless_not_required():
    assert project_action("<action>open fridge 1</action>", ADM) == ("open fridge 1", False)
    assert project_action("<action>open fridge 1</action>", ADM, require_think=False) == ("open fridge 1", True)


def test_multiple_action_tags_take_the_last_but_are_invalid():
    text = "<think>t</think><action>go to cabinet 1</action><action>open fridge 1</action>"
    assert project_action(text, ADM) == ("open fridge 1", False)


@pytest.mark.parametrize("text", [
    "<think>t</think><action>open fridge 1",            # unclosed
    "<think>t</think>open fridge 1</action>",           # no opening tag
    "<think>t</think></action>open fridge 1<action>",   # out of order
    "<think>t</think><action>   </action>",             # empty
    "<think>打开冰箱</think><action>open fridge 1</action>",  # Chinese characters
    "",
])
def test_malformed_answers_are_invalid(text):
    assert project_action(text, ADM)[1] is False


def test_admissibility_is_checked_only_when_asked():
    text = "<think>t</think><action>fly to the moon</action>"
    assert project_action(text, ADM) == ("fly to the moon", True)
    assert project_action(text, ADM, check_admissible=True) == ("fly to the moon", False)


def test_webshop_style_action_keeps_brackets():
    adm = ["search[query]", "click[Buy Now]"]
    assert project_action("<think>t</think><action>click[buy now]</action>", adm) == ("click[Buy Now]", True)


def test_projection_bad_input():
    with pytest.raises(TypeError, match="text"):
        project_action(None, ADM)
    with pytest.raises(TypeError, match="admissible"):
        project_action("x", "go to cabinet 1")
    with pytest.raises(ValueError, match="check_admissible"):
        project_action("x", None, check_admissible=True)


# --------------------------------------------------------------------------- prompts
def test_prompt_has_task_observation_actions_and_format_instruction():
    p = build_prompt(env_name="alfworld", task="put a mug in fridge", observation="You see a mug 1.", admissible=ADM)
    assert "Your task is to: put a mug in fridge" in p
    assert "You see a mug 1." in p
    assert "['go to cabinet 1', 'open fridge 1', 'take mug 1 from countertop 1']" in p
    assert "<think> </think>" in p and "<action> </action>" in p
    assert "Prior to this step" not in p  # no history at step 0


def test_prompt_shows_only_the_last_n_steps():
    hist = [("obs A", "act a"), ("obs B", "act b"), ("obs C", "act c")]
    p = build_prompt(env_name="webshop", task="buy shoes", observation="now", admissible=["search[x]"],
                     history=hist, history_length=2)
    # 3 steps taken, the last two shown with their step numbers 2 and 3.
    assert "already taken 3 step(s)" in p and "You are now at step 4" in p
    assert "obs A" not in p and "[Observation 2: 'obs B', Action 2: 'act b']" in p and "Action 3: 'act c'" in p
    assert format_history(hist, 0) == ""


def test_prompt_bad_input():
    with pytest.raises(ValueError, match="env_name"):
        build_prompt(env_name="chess", task="t", observation="o", admissible=[])
    with pytest.raises(TypeError, match="admissible"):
        build_prompt(env_name="alfworld", task="t", observation="o", admissible="look")
    with pytest.raises(ValueError, match="history_length"):
        format_history([], -1)
    assert "Your current observation is: o" in followup_prompt(observation="o", admissible=["look"])


# --------------------------------------------------------------------------- tiny model
def test_tiny_model_and_chatml_tokenizer(tmp_path_factory):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from scaled.tiny import build_tiny_model

    path = build_tiny_model(tmp_path_factory.getbasetemp() / "tiny")
    assert build_tiny_model(path) == path  # cached: the second call reuses the folder
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path)
    start = tok.convert_tokens_to_ids("<|im_start|>")
    end = tok.convert_tokens_to_ids("<|im_end|>")
    assert tok.eos_token_id == end and start != tok.unk_token_id
    ids = tok.apply_chat_template([{"role": "user", "content": "open door"}], add_generation_prompt=True,
                                  tokenize=True)["input_ids"]
    assert ids[0] == start and ids.count(end) == 1
    assert tok.decode(ids) == "<|im_start|>user\nopen door<|im_end|>\n<|im_start|>assistant\n"
    text = "<think>go</think><action>open door</action>"
    assert tok.decode(tok.encode(text, add_special_tokens=False)) == text
    assert model.config.vocab_size == len(tok)
