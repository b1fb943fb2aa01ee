"""Token counting benchmark: our counts against llama.cpp's own, and the cost of counting a long
chat again.

llama.cpp's server (llama-cpp-python) with SmolLM2-135M, the real model the tests use, is sent
each part of a mixed corpus (English prose, Python code, Russian, Chinese, Arabic, Japanese) as
a one-message chat with max_tokens=1; its usage.prompt_tokens is the reference. For each part
and overall the bench prints our exact count (the server's tokenizer plus the chat template's
overhead) and our estimate (o200k_base per script, times the measured factors) against it.
Targets: exact within 3%, estimate within 10%. Then a 100-turn chat built from the corpus is
counted with OpenAI's o200k_base cold (a new cache) and again with the cache: target, the warm
count well under 100 ms (the cold one is the baseline measured in the same run).

    .venv/bin/python bench/tokens.py [--url http://127.0.0.1:PORT/v1 --key KEY]

Exit 0 once measured, even when a target is missed (that is a result); 2 when it could not run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import openai  # noqa: E402

from bench.first_token import MODEL, start_llama  # noqa: E402
from bench.stream import BenchError, Processes, Server  # noqa: E402
from core.chat.netguard import NetworkPolicy, guarded_http_client  # noqa: E402
from core.chat.tokens import (  # noqa: E402
    EstimateCounter, ServerCounter, TokenCache, VocabularyCounter, count_messages, counter_for,
)

EXACT_TARGET, ESTIMATE_TARGET, WARM_TARGET_MS = 0.03, 0.10, 100.0
TURNS, RUNS = 100, 5

CORPUS = {
    "English prose": (
        "The lighthouse keeper had not spoken to another person in eleven days when the supply "
        "boat finally rounded the headland. He watched it from the gallery, counting the strokes "
        "of the oars, and wondered whether the new assistant would be the talkative sort. The "
        "last one had been; he had filled every silence with stories about his sister's farm, "
        "the price of wool, and a dog that could open gates. Still, the keeper thought, a voice "
        "in the evenings was not the worst thing. Winter was coming, and with it the long nights "
        "when the lamp needed trimming every few hours and the wind found every gap in the "
        "stonework. He went down the spiral stairs, past the oil store and the narrow bunk room, "
        "and opened the door to a sky the colour of pewter. Gulls wheeled over the landing stage. "
        "Somewhere below, the sea was making the low, patient sound it made before a storm.\n\n"
        "Budgets, like lighthouses, are mostly about warning people in time. A warning that comes "
        "after the rocks is only a description of the wreck."
    ),
    "Python code": (
        "import json\nfrom dataclasses import dataclass, field\nfrom pathlib import Path\n\n\n"
        "@dataclass\nclass Inventory:\n    \"\"\"Items by SKU, with a reorder threshold.\"\"\"\n\n"
        "    items: dict[str, int] = field(default_factory=dict)\n    threshold: int = 5\n\n"
        "    def add(self, sku: str, quantity: int = 1) -> None:\n        if quantity <= 0:\n"
        "            raise ValueError(f\"quantity must be positive, got {quantity}\")\n"
        "        self.items[sku] = self.items.get(sku, 0) + quantity\n\n"
        "    def take(self, sku: str, quantity: int = 1) -> bool:\n"
        "        have = self.items.get(sku, 0)\n        if have < quantity:\n            return False\n"
        "        self.items[sku] = have - quantity\n        return True\n\n"
        "    def to_reorder(self) -> list[str]:\n"
        "        return sorted(s for s, n in self.items.items() if n < self.threshold)\n\n\n"
        "def load(path: Path) -> Inventory:\n    data = json.loads(path.read_text(encoding=\"utf-8\"))\n"
        "    return Inventory(items={k: int(v) for k, v in data[\"items\"].items()},\n"
        "                     threshold=data.get(\"threshold\", 5))\n\n\n"
        "if __name__ == \"__main__\":\n    inv = load(Path(\"stock.json\"))\n"
        "    for sku in inv.to_reorder():\n        print(f\"{sku}: {inv.items[sku]} left\")\n"
    ),
    "Russian": (
        "Смотритель маяка не разговаривал ни с кем одиннадцать дней, когда лодка с припасами "
        "наконец обогнула мыс. Он следил за ней с галереи, считая взмахи вёсел, и думал, окажется "
        "ли новый помощник болтливым. Прежний был именно таким: заполнял каждую паузу рассказами "
        "о ферме своей сестры, о цене на шерсть и о собаке, умевшей открывать калитки. И всё же, "
        "думал смотритель, голос по вечерам — не самое худшее. Приближалась зима, а с ней долгие "
        "ночи, когда фитиль нужно подрезать каждые несколько часов, а ветер находит каждую щель "
        "в каменной кладке. Он спустился по винтовой лестнице мимо масляного склада и узкой "
        "спальни и открыл дверь навстречу небу цвета олова."
    ),
    "Chinese": (
        "灯塔看守人已经十一天没有和任何人说过话了，补给船终于绕过了岬角。他站在回廊上望着它，"
        "数着船桨划动的次数，心想新来的助手会不会是个爱说话的人。上一个就是这样：他用姐姐农场的"
        "故事、羊毛的价格，还有一条会开门的狗，填满了每一段沉默。不过，看守人想，晚上有个声音"
        "倒也不算最坏的事。冬天快到了，随之而来的是漫长的夜晚，灯芯每隔几个小时就要修剪一次，"
        "而风会钻进石墙的每一道缝隙。他沿着螺旋楼梯走下去，经过油库和狭窄的卧室，推开门，"
        "外面是锡灰色的天空。海鸥在码头上空盘旋。"
    ),
    "Arabic": (
        "لم يتحدث حارس المنارة إلى أي شخص منذ أحد عشر يومًا عندما دار قارب الإمدادات أخيرًا حول "
        "الرأس. راقبه من الشرفة وهو يعد ضربات المجاديف، وتساءل عما إذا كان المساعد الجديد من النوع "
        "الثرثار. كان المساعد السابق كذلك؛ فقد ملأ كل لحظة صمت بقصص عن مزرعة أخته وسعر الصوف وكلب "
        "يستطيع فتح البوابات. ومع ذلك، فكر الحارس، ليس صوت في المساء أسوأ شيء. كان الشتاء قادمًا، "
        "ومعه الليالي الطويلة."
    ),
    "Japanese": (
        "灯台守は十一日間、誰とも話していなかった。そのとき、補給船がようやく岬を回ってきた。"
        "彼は回廊からそれを眺め、オールのひと漕ぎを数えながら、新しい助手はおしゃべりな人だろうか"
        "と考えた。前の助手はそうだった。姉の農場の話や羊毛の値段、門を開けられる犬の話で、"
        "あらゆる沈黙を埋めていた。それでも、夜に誰かの声があるのは悪いことではない、と灯台守は"
        "思った。冬が近づいていた。"
    ),
}


def prompt_tokens(server: Server, messages: list[dict]) -> int:
    client = openai.OpenAI(base_url=server.base_url, api_key=server.api_key, max_retries=0)
    reply = client.chat.completions.create(model=MODEL, messages=messages, max_tokens=1)
    return reply.usage.prompt_tokens


def _off(ours: int, reference: int) -> float:
    return (ours - reference) / reference


def compare_counts(server: Server, exact: ServerCounter) -> None:
    estimate = EstimateCounter()
    print(f"{'part':15} {'server':>7} {'exact':>7} {'off':>7} {'estimate':>9} {'off':>7}")
    totals = [0, 0, 0]
    for name, text in CORPUS.items():
        messages = [{"role": "system", "content": "You answer briefly."},
                    {"role": "user", "content": text}]
        reference = prompt_tokens(server, messages)
        ours, guess = count_messages(exact, messages), count_messages(estimate, messages)
        for i, value in enumerate((reference, ours, guess)):
            totals[i] += value
        print(f"{name:15} {reference:7} {ours:7} {_off(ours, reference):+7.1%} {guess:9}"
              f" {_off(guess, reference):+7.1%}")
    reference, ours, guess = totals
    print(f"{'overall':15} {reference:7} {ours:7} {_off(ours, reference):+7.1%} {guess:9}"
          f" {_off(guess, reference):+7.1%}")
    exact_off = abs(_off(ours, reference))
    print(f"exact overall within {EXACT_TARGET:.0%}: {'PASS' if exact_off <= EXACT_TARGET else 'FAIL'};"
          f" estimate overall within {ESTIMATE_TARGET:.0%}:"
          f" {'PASS' if abs(_off(guess, reference)) <= ESTIMATE_TARGET else 'FAIL'}")


def hundred_turns() -> list[dict]:
    parts = list(CORPUS.values())
    return [{"role": "user" if n % 2 == 0 else "assistant", "content": f"Turn {n}. " + parts[n % len(parts)]}
            for n in range(TURNS)]


def time_cache() -> None:
    counter, messages = VocabularyCounter("o200k_base"), hundred_turns()
    count_messages(counter, messages[:1])  # the vocabulary is loaded once per process
    cold, warm = [], []
    for _ in range(RUNS):
        cache = TokenCache()
        started = time.perf_counter()
        count_messages(counter, messages, cache)
        cold.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        count_messages(counter, messages, cache)
        warm.append((time.perf_counter() - started) * 1000)
    chars = sum(len(m["content"]) for m in messages)
    cold_ms, warm_ms = statistics.median(cold), statistics.median(warm)
    print(f"\n{TURNS}-turn chat ({chars:,} characters), o200k_base, median of {RUNS}: cold {cold_ms:.1f} ms,"
          f" with the cache {warm_ms:.2f} ms ({warm_ms / cold_ms:.3f}x cold);"
          f" warm under {WARM_TARGET_MS:.0f} ms: {'PASS' if warm_ms < WARM_TARGET_MS else 'FAIL'}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="a running llama-cpp-python server's base URL (ends in /v1)")
    parser.add_argument("--key", default="", help="its API key")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    http_client = guarded_http_client(NetworkPolicy(allow_private=True))
    with tempfile.TemporaryDirectory(prefix="switchboard-tokens-") as work:
        processes = Processes(Path(work))
        try:
            server = Server(args.url, args.key) if args.url else start_llama(processes)
            counter = counter_for(server.target(), http_client)
            if not isinstance(counter, ServerCounter):
                raise BenchError(f"the server at {server.base_url} does not count tokens")
            compare_counts(server, counter)
        except BenchError as exc:
            print(f"bench could not run: {exc}", file=sys.stderr)
            return 2
        finally:
            processes.stop_all()
    time_cache()
    return 0


if __name__ == "__main__":
    sys.exit(main())
