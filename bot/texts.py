"""Everything the bot says, in English and Chinese; HTML where formatting is used.

Users whose Telegram language starts with "zh" get Chinese, everyone else English. Values
passed in are escaped by the caller (`html.escape`) when they come from users or models.
"""

from __future__ import annotations

EN: dict[str, str] = {
    "welcome": (
        "Hi {name}! Send me the beginning of a sentence and I will continue it "
        "with an LSTM language model, one {unit} at a time.\n\n"
        "<b>Your settings</b>\n{settings}\n\n"
        "<b>Commands</b>\n{commands}"
    ),
    "help": "<b>Commands</b>\n{commands}\n\nIn groups, mention me, reply to one of my messages, or use /gen.",
    "settings": "model: <b>{model}</b> ({language}, {unit}s)\ntemperature: <b>{temperature}</b>\nlength: <b>{length}</b> {unit}s",
    "unit_char": "character",
    "unit_word": "word",
    "lang_en": "English",
    "lang_zh": "Chinese",
    "footer": "{model} · T={temperature} · {length} {unit}s",
    "random_seed": "No seed given, so I picked one from the model's own book:",
    "mostly_unknown": "Most of your seed is unknown to this model ({unknown} of {total}); it is read as blanks.",
    "seed_too_long": "Your seed is long; I continued from its last part.",
    "busy": "I'm busy right now. Please try again in a few seconds.",
    "one_at_a_time": "I'm still writing your previous text. One at a time, please!",
    "rate_limited": "Slow down a little: up to {limit} texts per minute. Try again in {seconds} s.",
    "unavailable": "Sorry, something is temporarily unavailable. Please try again in a minute.",
    "restarting": "I'm restarting. Please send that again in a moment.",
    "empty_seed": "Send some text for me to continue, e.g. <code>/gen the will to truth</code>.",
    "non_text": "I can only continue text. Send me the beginning of a sentence.",
    "temp_show": (
        "Your temperature is <b>{value}</b>.\n"
        "Low (0.2) is safe and repetitive, high (1.2) is surprising and wild; 0 always picks the "
        "likeliest next {unit}. Set it with <code>/temp 0.7</code> (0 to 2) or a button:"
    ),
    "temp_set": "Temperature set to <b>{value}</b>.",
    "temp_bad": "Temperature must be a number from 0 to 2, like <code>/temp 0.7</code> (0 means greedy).",
    "length_show": "Samples are <b>{value}</b> {unit}s long. Set with <code>/length N</code> ({low} to {high}).",
    "length_set": "Length set to <b>{value}</b> {unit}s.",
    "length_bad": "Length must be a whole number from {low} to {high}, like <code>/length {example}</code>.",
    "model_list": "<b>Models</b> (yours is marked ✓):\n{models}\nPick one:",
    "model_line": "{mark} <b>{name}</b>: {language}, {unit} level{corpus}",
    "model_set": "Model set to <b>{name}</b> ({language}).",
    "model_bad": "There is no model called {name}. Use /model to see the list.",
    "settings_title": "<b>Your settings</b>\n{settings}",
    "rated_up": "You liked it 👍",
    "rated_down": "You disliked it 👎",
    "rating_withdrawn": "Rating withdrawn",
    "rating_same": "Already counted",
    "sample_gone": "That sample no longer exists.",
    "button_invalid": "This button is not valid any more.",
    "share": "🌐 Share",
    "unshare": "🔒 Unshare",
    "shared_done": "Shared: anyone can now see it in /rate and /top.",
    "unshared_done": "Private again: only this chat sees it.",
    "share_not_author": "Only the author can share this sample.",
    "rate_none": "Nothing left to rate here. Thanks for all your ratings!",
    "rate_intro": "Rate this sample:",
    "compare_title": "<b>{seed}</b> at four temperatures:",
    "compare_part": "<i>T={temperature}</i>\n<b>{seed}</b>{text}",
    "top_none": "No rated samples yet. Rate some with 👍 or 👎!",
    "top_title": "<b>Best-rated samples{where}</b>",
    "top_where_chat": " in this chat",
    "top_line": "{rank}. 👍 {up} 👎 {down} · <b>{seed}</b>{text}",
    "top_bad": "Use /top on its own (or /top 1 to 10 for how many).",
    "mystats": (
        "<b>Your numbers</b>\nsamples: {samples}\nratings given: {given}\n"
        "👍 received: {up}\n👎 received: {down}"
    ),
    "forget_ask": "This deletes your settings, samples and ratings. Are you sure?",
    "forget_yes": "Yes, delete everything",
    "forget_no": "No, keep it",
    "forget_done": "Done: I deleted {samples} samples and {ratings} ratings and forgot your settings.",
    "forget_nothing": "I had nothing stored about you.",
    "forget_cancelled": "Nothing was deleted.",
    "admin_only": "Sorry, /stats is for the bot's admins.",
    "stats": (
        "<b>Bot stats</b>\nusers: {users}\nsamples: {samples} ({last24} in 24 h)\n"
        "ratings: {ratings} (👍 {up} / 👎 {down})\n<b>replica {replica}</b>\nqueue: {queue}\n"
        "latency p50/p90/p99: {p50} / {p90} / {p99} ms\nuptime: {uptime}"
    ),
    "again": "🔁 Again",
    "next": "⏭ Next",
}

ZH: dict[str, str] = {
    "welcome": (
        "你好，{name}！发给我一句话的开头，我会用 LSTM 语言模型一个{unit}一个{unit}地续写下去。\n\n"
        "<b>你的设置</b>\n{settings}\n\n<b>命令</b>\n{commands}"
    ),
    "help": "<b>命令</b>\n{commands}\n\n在群里：提到我、回复我的消息，或使用 /gen。",
    "settings": "模型：<b>{model}</b>（{language}，按{unit}）\n温度：<b>{temperature}</b>\n长度：<b>{length}</b> 个{unit}",
    "unit_char": "字",
    "unit_word": "词",
    "lang_en": "英文",
    "lang_zh": "中文",
    "footer": "{model} · T={temperature} · {length} 个{unit}",
    "random_seed": "你没有给开头，我从模型自己的书里挑了一句：",
    "mostly_unknown": "这个模型不认识你开头的大部分内容（{total} 个中有 {unknown} 个），它们被当作空白。",
    "seed_too_long": "开头太长了，我从最后一部分接着写。",
    "busy": "我现在很忙，请几秒钟后再试。",
    "one_at_a_time": "我还在写你上一段，请一次一个！",
    "rate_limited": "慢一点：每分钟最多 {limit} 段。请 {seconds} 秒后再试。",
    "unavailable": "抱歉，服务暂时不可用，请稍后再试。",
    "restarting": "我正在重启，请稍后再发一次。",
    "empty_seed": "请发一些文字让我续写，例如 <code>/gen 宝玉笑道</code>。",
    "non_text": "我只能续写文字。请发给我一句话的开头。",
    "temp_show": (
        "你的温度是 <b>{value}</b>。\n低（0.2）稳妥但重复，高（1.2）出人意料也更狂野；0 总是选最可能的下一个{unit}。"
        "用 <code>/temp 0.7</code>（0 到 2）或下面的按钮设置："
    ),
    "temp_set": "温度已设为 <b>{value}</b>。",
    "temp_bad": "温度必须是 0 到 2 之间的数字，例如 <code>/temp 0.7</code>（0 表示总选最可能的）。",
    "length_show": "每段长 <b>{value}</b> 个{unit}。用 <code>/length N</code> 设置（{low} 到 {high}）。",
    "length_set": "长度已设为 <b>{value}</b> 个{unit}。",
    "length_bad": "长度必须是 {low} 到 {high} 之间的整数，例如 <code>/length {example}</code>。",
    "model_list": "<b>模型</b>（你的用 ✓ 标出）：\n{models}\n选一个：",
    "model_line": "{mark} <b>{name}</b>：{language}，按{unit}{corpus}",
    "model_set": "模型已设为 <b>{name}</b>（{language}）。",
    "model_bad": "没有叫 {name} 的模型。用 /model 查看列表。",
    "settings_title": "<b>你的设置</b>\n{settings}",
    "rated_up": "你点了赞 👍",
    "rated_down": "你点了踩 👎",
    "rating_withdrawn": "已撤回评分",
    "rating_same": "已经记下了",
    "sample_gone": "这段文字已经不存在了。",
    "button_invalid": "这个按钮已经失效了。",
    "share": "🌐 公开",
    "unshare": "🔒 取消公开",
    "shared_done": "已公开：所有人都能在 /rate 和 /top 里看到它。",
    "unshared_done": "已设为私密：只有这个聊天能看到它。",
    "share_not_author": "只有作者本人可以公开这段文字。",
    "rate_none": "这里没有可评的了。谢谢你的评分！",
    "rate_intro": "给这段打分：",
    "compare_title": "<b>{seed}</b> 在四个温度下：",
    "compare_part": "<i>T={temperature}</i>\n<b>{seed}</b>{text}",
    "top_none": "还没有评过分的文字。用 👍 或 👎 评一评吧！",
    "top_title": "<b>评分最高的文字{where}</b>",
    "top_where_chat": "（本群）",
    "top_line": "{rank}. 👍 {up} 👎 {down} · <b>{seed}</b>{text}",
    "top_bad": "直接用 /top（或 /top 1 到 10 表示条数）。",
    "mystats": "<b>你的数据</b>\n文字：{samples}\n评分：{given}\n收到 👍：{up}\n收到 👎：{down}",
    "forget_ask": "这会删除你的设置、文字和评分。确定吗？",
    "forget_yes": "是的，全部删除",
    "forget_no": "不，保留",
    "forget_done": "完成：删除了 {samples} 段文字和 {ratings} 个评分，并忘记了你的设置。",
    "forget_nothing": "我没有存任何关于你的东西。",
    "forget_cancelled": "什么都没有删除。",
    "admin_only": "抱歉，/stats 只供管理员使用。",
    "stats": (
        "<b>统计</b>\n用户：{users}\n文字：{samples}（24 小时内 {last24}）\n"
        "评分：{ratings}（👍 {up} / 👎 {down}）\n<b>副本 {replica}</b>\n队列：{queue}\n"
        "延迟 p50/p90/p99：{p50} / {p90} / {p99} 毫秒\n运行时间：{uptime}"
    ),
    "again": "🔁 再来",
    "next": "⏭ 下一个",
}

COMMANDS: dict[str, list[tuple[str, str]]] = {
    "en": [
        ("gen", "continue a seed: /gen the will to truth"),
        ("temp", "show or set your temperature (0 to 2)"),
        ("length", "show or set the sample length"),
        ("model", "list models and switch"),
        ("settings", "your current settings"),
        ("compare", "one seed at 0.2, 0.5, 1.0 and 1.2"),
        ("rate", "rate samples others made"),
        ("top", "best-rated samples"),
        ("mystats", "your numbers"),
        ("forget", "delete everything stored about you"),
        ("help", "what I can do"),
    ],
    "zh": [
        ("gen", "续写：/gen 宝玉笑道"),
        ("temp", "查看或设置温度（0 到 2）"),
        ("length", "查看或设置长度"),
        ("model", "模型列表与切换"),
        ("settings", "当前设置"),
        ("compare", "同一开头，四个温度"),
        ("rate", "给别人生成的文字打分"),
        ("top", "评分最高的文字"),
        ("mystats", "你的数据"),
        ("forget", "删除关于你的一切"),
        ("help", "我能做什么"),
    ],
}


def language_of(code: str | None) -> str:
    """ "zh" for Chinese Telegram clients, "en" for everyone else."""
    return "zh" if code and code.lower().startswith("zh") else "en"


def text(lang: str, key: str, **values: object) -> str:
    """The message `key` in `lang`, filled with `values`."""
    catalog = ZH if lang == "zh" else EN
    return catalog[key].format(**values)


def command_list(lang: str) -> str:
    """The commands as lines of "/name - what it does"."""
    return "\n".join(f"/{name} - {about}" for name, about in COMMANDS["zh" if lang == "zh" else "en"])
