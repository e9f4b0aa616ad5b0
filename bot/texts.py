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
    "welcome_group": (
        "Hi {name}! In a group I continue the beginning of a sentence when you mention me, reply "
        "to one of my messages or use /gen, with an LSTM language model, one {unit} at a time.\n\n"
        "<b>Your settings</b>\n{settings}\n\n/help lists the commands."
    ),
    "help": (
        "<b>Commands</b>\n{commands}\n\nIn groups, mention me, reply to one of my messages, or use /gen.\n"
        "<b>Real or dream?</b> /game shows a passage from the book the model never read with two "
        "endings, the real one and the model's: vote for the real one (/game 60 for 60 s, /game stop "
        "to end it). /scores is the chat's leaderboard.\n"
        "<b>Inline:</b> type my @username and a seed in any chat and pick one of three continuations."
    ),
    "unknown_command": "I don't know {command}.",
    "group_default_show": (
        "<b>This group's defaults</b> (for members who did not choose their own)\n"
        "model: {model}\ntemperature: {temperature}\nlength: {length}\n"
        "Admins set them with <code>/groupdefault temp 0.8</code>, <code>/groupdefault model NAME</code>, "
        "<code>/groupdefault length 200</code> or <code>/groupdefault clear</code>."
    ),
    "group_default_none": "the bot's",
    "group_default_length": "{value} {unit}s",
    "group_default_set": "Saved.",
    "group_default_usage": (
        "Use <code>/groupdefault temp 0.8</code>, <code>/groupdefault model NAME</code> (see /model), "
        "<code>/groupdefault length 200</code> or <code>/groupdefault clear</code>."
    ),
    "group_default_admins": "Only this group's admins can change its defaults.",
    "group_default_private": "/groupdefault sets a group's defaults: use it in a group you administer.",
    "settings": "model: <b>{model}</b> ({language}, {unit}s)\ntemperature: <b>{temperature}</b>\nlength: <b>{length}</b> {unit}s",
    "unit_char": "character",
    "unit_word": "word",
    "lang_en": "English",
    "lang_zh": "Chinese",
    "corpus_nietzsche": "Nietzsche's aphorisms, lower case (the book's own corpus)",
    "corpus_shakespeare": "Shakespeare's plays, speaker names and verse lines kept",
    "corpus_hongloumeng": "Dream of the Red Chamber, the classic novel, word by word",
    "corpus_tang": "Tang poems: 5- and 7-character verse; try /acrostic",
    "footer": "{model} · T={temperature} · {length} {unit}s",
    "acrostic_footer": "{model} · T={temperature} · an acrostic of {heads}, {chars} characters a line",
    "acrostic_usage": (
        "Give the first character of each line, and 5 or 7 characters a line: "
        "<code>/acrostic 新年快乐 7</code> (1 to 8 Chinese characters, one a line)."
    ),
    "acrostic_no_model": "No poem model is loaded here, so I cannot write acrostics.",
    "acrostic_no_duel": "Acrostics are not dueled: their fixed form would decide.",
    "acrostic_missing": "The poem model does not know {missing}: try other characters (simplified ones).",
    "random_seed": "No seed given, so I picked one from the model's own book:",
    "mostly_unknown": "Most of your seed is unknown to this model ({unknown} of {total}); it is read as blanks.",
    "seed_too_long": "Your seed is long; I continued from its last part.",
    "other_script": "This model writes {language}; for your text, pick another one with /model.",
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
    "temp_bad": "Temperature must be a number from 0 to 2, like <code>{command} 0.7</code> (0 means greedy).",
    "temp_too_precise": "At most {decimals} decimals, please, like <code>{command} 0.125</code>.",
    "length_show": "Samples are <b>{value}</b> {unit}s long. Set with <code>/length N</code> ({low} to {high}).",
    "length_set": "Length set to <b>{value}</b> {unit}s.",
    "length_bad": "Length must be a whole number from {low} to {high}, like <code>{command} {example}</code>.",
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
    "already_shared": "Already shared.",
    "next_already": "The next one is on its way below.",
    "already_private": "Already private.",
    "forget_not_yours": "Only whoever sent this /forget can answer it.",
    "share_not_author": "Only the author can share this sample.",
    "rate_none": (
        "Nothing left to rate here. In a private chat you rate what other people shared; your own "
        "samples are rated by others once you share them with 🌐 Share. Or add me to a group and "
        "invite friends: there everyone rates the group's samples."
    ),
    "rate_none_group": "Nothing left to rate in this group. Make more with /gen or by mentioning me!",
    "rate_intro": "Rate this sample:",
    "compare_title": "<b>{seed}</b> at four temperatures:",
    "compare_part": "<i>T={temperature}</i>\n<b>{seed}</b>{text}",
    "top_none": "No sample has more 👍 than 👎 yet. Rate some with 👍 or 👎!",
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
    "forget_done": "Done: I deleted {samples:sample|samples} and {ratings:rating|ratings} and forgot your settings.",
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
    # -- duels and the leaderboard --
    "vs": "🆚 Duel",
    "switch_model": "Switch to {model}",
    "duel_title": "<b>Which continuation is better?</b> (settings hidden until you vote)",
    "duel_part": "<b>{side}</b>\n<b>{seed}</b>{text}",
    "duel_a": "A is better",
    "duel_b": "B is better",
    "duel_tie": "Tie",
    "duel_bad": "Both bad",
    "duel_voted": "Your vote: {outcome}. A was {arm_a}, B was {arm_b}.",
    "duel_final": "You voted already: {outcome}. A vote that counts is final.",
    "duel_early_blind": "Too fast to count: read both, then vote again. (Stored: {outcome}.)",
    "duel_capped_blind": "Daily limit reached: stored ({outcome}), not counted; the settings stay hidden.",
    "duel_one_arm": "A duel needs two ways of writing, but only one is set up for this language.",
    "duel_gone": "This duel no longer exists.",
    "leaderboard_title": "<b>Leaderboard</b> ({votes:counted duel vote|counted duel votes})",
    "leaderboard_head": "arm · strength [95%] · votes · both bad",
    "leaderboard_line": "{rank}. {arm} · {strength:+.2f} [{low:+.2f}, {high:+.2f}] · {duels} · {bad:.0%}",
    "leaderboard_none": "No counted duel votes yet. Start one with /duel!",
    "leaderboard_caption": "Duel strengths and share of likes per temperature",
    "leaderboard_wait": "You just asked: one /leaderboard every {seconds} s, please.",
    "leaderboard_challenger": (
        "🥊 Challenger {model} v{version} against its champion in blind duels: "
        "{votes:vote|votes}, wins {rate} (ties as half) · {state}"
    ),
    "challenger_deciding": "deciding (promoted when the evidence reaches {needed})",
}

ZH: dict[str, str] = {
    "welcome": (
        "你好，{name}！发给我一句话的开头，我会用 LSTM 语言模型一个{unit}一个{unit}地续写下去。\n\n"
        "<b>你的设置</b>\n{settings}\n\n<b>命令</b>\n{commands}"
    ),
    "welcome_group": (
        "你好，{name}！在群里提到我、回复我的消息或使用 /gen，我会用 LSTM 语言模型"
        "一个{unit}一个{unit}地续写你给的开头。\n\n<b>你的设置</b>\n{settings}\n\n/help 列出所有命令。"
    ),
    "help": (
        "<b>命令</b>\n{commands}\n\n在群里：提到我、回复我的消息，或使用 /gen。\n"
        "<b>真还是梦？</b>/game 从模型没读过的那部分书里取一段，给出两个结尾：一个是原文，一个是模型写的，"
        "投票选出原文（/game 60 表示 60 秒，/game stop 结束）。/scores 是本群排行榜。\n"
        "<b>内联模式：</b>在任何聊天里输入我的 @用户名 和开头，从三段续写中选一段发送。"
    ),
    "unknown_command": "我不认识 {command} 这个命令。",
    "group_default_show": (
        "<b>本群默认设置</b>（给没有自己设置的成员）\n模型：{model}\n温度：{temperature}\n长度：{length}\n"
        "管理员可用 <code>/groupdefault temp 0.8</code>、<code>/groupdefault model 名称</code>、"
        "<code>/groupdefault length 200</code> 或 <code>/groupdefault clear</code> 设置。"
    ),
    "group_default_none": "机器人默认",
    "group_default_length": "{value} 个{unit}",
    "group_default_set": "已保存。",
    "group_default_usage": (
        "用法：<code>/groupdefault temp 0.8</code>、<code>/groupdefault model 名称</code>（见 /model）、"
        "<code>/groupdefault length 200</code> 或 <code>/groupdefault clear</code>。"
    ),
    "group_default_admins": "只有本群管理员可以修改默认设置。",
    "group_default_private": "/groupdefault 用来设置群的默认值：请在你管理的群里使用。",
    "other_script": "这个模型写的是{language}；你的文字请用 /model 换一个模型。",
    "settings": "模型：<b>{model}</b>（{language}，按{unit}）\n温度：<b>{temperature}</b>\n长度：<b>{length}</b> 个{unit}",
    "unit_char": "字",
    "unit_word": "词",
    "lang_en": "英文",
    "lang_zh": "中文",
    "corpus_nietzsche": "尼采的格言（英文小写，书中的语料）",
    "corpus_shakespeare": "莎士比亚戏剧（英文），保留角色名和诗行",
    "corpus_hongloumeng": "《红楼梦》，按词续写",
    "corpus_tang": "唐诗：五言、七言；试试 /acrostic 藏头诗",
    "footer": "{model} · T={temperature} · {length} 个{unit}",
    "acrostic_footer": "{model} · T={temperature} · 藏头诗「{heads}」· {chars} 言",
    "acrostic_usage": "给出每行的第一个字，以及每行 5 或 7 字：<code>/acrostic 新年快乐 7</code>（1 到 8 个汉字，每行一个）。",
    "acrostic_no_model": "这里没有载入诗歌模型，写不了藏头诗。",
    "acrostic_no_duel": "藏头诗不参加对决：固定的格式会左右结果。",
    "acrostic_missing": "诗歌模型不认识「{missing}」，换几个字试试（用简体字）。",
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
    "temp_bad": "温度必须是 0 到 2 之间的数字，例如 <code>{command} 0.7</code>（0 表示总选最可能的）。",
    "temp_too_precise": "最多 {decimals} 位小数，例如 <code>{command} 0.125</code>。",
    "length_show": "每段长 <b>{value}</b> 个{unit}。用 <code>/length N</code> 设置（{low} 到 {high}）。",
    "length_set": "长度已设为 <b>{value}</b> 个{unit}。",
    "length_bad": "长度必须是 {low} 到 {high} 之间的整数，例如 <code>{command} {example}</code>。",
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
    "already_shared": "已经公开了。",
    "next_already": "下一段马上就到，在下面。",
    "already_private": "已经是私密的了。",
    "forget_not_yours": "只有发送这条 /forget 的人才能回答。",
    "share_not_author": "只有作者本人可以公开这段文字。",
    "rate_none": (
        "这里没有可评的了。私聊里评的是别人公开的文字；你自己的文字用 🌐 公开后，别人就能评。"
        "也可以把我拉进群、邀请朋友：群里每个人都能评群里的文字。"
    ),
    "rate_none_group": "这个群里没有可评的了。用 /gen 或提到我来多写几段吧！",
    "rate_intro": "给这段打分：",
    "compare_title": "<b>{seed}</b> 在四个温度下：",
    "compare_part": "<i>T={temperature}</i>\n<b>{seed}</b>{text}",
    "top_none": "还没有 👍 多于 👎 的文字。用 👍 或 👎 评一评吧！",
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
    # -- duels and the leaderboard --
    "vs": "🆚 对决",
    "switch_model": "换成 {model}",
    "duel_title": "<b>哪一段续写更好？</b>（投票后才揭晓设置）",
    "duel_part": "<b>{side}</b>\n<b>{seed}</b>{text}",
    "duel_a": "A 更好",
    "duel_b": "B 更好",
    "duel_tie": "平局",
    "duel_bad": "都不好",
    "duel_voted": "你的投票：{outcome}。A 是 {arm_a}，B 是 {arm_b}。",
    "duel_final": "你已经投过票了：{outcome}。计入的投票不能更改。",
    "duel_early_blind": "太快了，不计入：读完两段再投一次。（已记录：{outcome}。）",
    "duel_capped_blind": "已达今日上限：已记录（{outcome}），不计入；设置保持隐藏。",
    "duel_one_arm": "对决需要两种写法，但这种语言只配置了一种。",
    "duel_gone": "这场对决已经不存在了。",
    "leaderboard_title": "<b>排行榜</b>（{votes} 票计入）",
    "leaderboard_head": "写法 · 强度 [95%] · 票数 · 都不好",
    "leaderboard_line": "{rank}. {arm} · {strength:+.2f} [{low:+.2f}, {high:+.2f}] · {duels} · {bad:.0%}",
    "leaderboard_none": "还没有计入的对决投票。用 /duel 开始一场吧！",
    "leaderboard_caption": "对决强度与各温度的 👍 比例",
    "leaderboard_wait": "刚刚问过了：每 {seconds} 秒可以看一次 /leaderboard。",
    "leaderboard_challenger": "🥊 挑战者 {model} v{version} 与现任在盲评对决中：{votes} 票，胜率 {rate}（平局算一半）· {state}",
    "challenger_deciding": "评定中（证据达到 {needed} 即晋升）",
}

COMMANDS: dict[str, list[tuple[str, str]]] = {
    "en": [
        ("gen", "continue a seed: /gen the will to truth"),
        ("temp", "show or set your temperature (0 to 2)"),
        ("length", "show or set the sample length"),
        ("model", "list models and switch"),
        ("settings", "your current settings"),
        ("compare", "one seed at 0.2, 0.5, 1.0 and 1.2"),
        ("rate", "rate other people's samples, one at a time"),
        ("top", "best-rated samples"),
        ("duel", "two hidden settings, you pick the better"),
        ("leaderboard", "which settings write best"),
        ("mystats", "your numbers"),
        ("groupdefault", "group admins: the group's default model, temperature, length"),
        ("forget", "delete everything stored about you"),
        ("game", "Real or dream? guess the real ending"),
        ("scores", "this chat's game leaderboard"),
        ("fooled", "how often the model fooled players"),
        ("acrostic", "an acrostic poem: /acrostic 新年快乐 7"),
        ("help", "what I can do"),
    ],
    "zh": [
        ("gen", "续写：/gen 宝玉笑道"),
        ("temp", "查看或设置温度（0 到 2）"),
        ("length", "查看或设置长度"),
        ("model", "模型列表与切换"),
        ("settings", "当前设置"),
        ("compare", "同一开头，四个温度"),
        ("rate", "逐个给别人的文字打分"),
        ("top", "评分最高的文字"),
        ("duel", "两种隐藏设置，选出更好的"),
        ("leaderboard", "哪种设置写得最好"),
        ("mystats", "你的数据"),
        ("groupdefault", "群管理员：本群默认的模型、温度、长度"),
        ("forget", "删除关于你的一切"),
        ("game", "真还是梦？猜出原文的结尾"),
        ("scores", "本群游戏排行榜"),
        ("fooled", "模型骗到玩家的比例"),
        ("acrostic", "藏头诗：/acrostic 新年快乐 7"),
        ("help", "我能做什么"),
    ],
}

# -- group fun: the novelty badge, "Real or dream?", inline mode ------------------------------
EN.update(
    {
        "copied_badge": "⚠ {count} {unit}s copied from the book",
        "stitched_badge": "🧩 pieced together from the book's phrases: {share}% of its 8-grams are new",
        "copied_every_draw": "Every draw copied from the book ({draws} tries); here is the last one.",
        "game_text": (
            "<b>Real or dream?</b> One ending is the book's, one is {model}'s (T={temperature}).\n\n"
            "<b>{seed}</b>…\n\n<b>A</b> …{a}\n\n<b>B</b> …{b}\n\n{status}"
        ),
        "game_reveal": (
            "<b>Real or dream?</b>\n\n<b>{seed}</b>…\n\n<b>A</b> …{a}\n\n<b>B</b> …{b}\n\n"
            "✅ <b>{real}</b> is the book; {fake} was {model} (T={temperature}).\n{result}"
        ),
        "game_stopped_text": "<b>Real or dream?</b> stopped. The real ending was <b>{real}</b>.",
        "game_left": "⏳ {seconds} s left · {votes:vote|votes}",
        "game_ended": "⌛ ended · {votes:vote|votes}",
        "game_more_lines": "… and {count} more",
        "game_right": "Right: {names}",
        "game_wrong": "Fooled: {names}",
        "game_nobody": "Nobody voted.",
        "game_score_line": "{rank}. {name}: {right}/{played}",
        "game_vote_a": "A is real",
        "game_vote_b": "B is real",
        "game_voted": "Your vote: {choice} is real",
        "game_over": "This game is over.",
        "game_running": "A game is already running here; vote on it, or /game stop.",
        "game_none": "No game is running here. Start one with /game.",
        "game_stop_denied": "Only whoever started the game or a group admin can stop it.",
        "game_bad": "Use /game, /game 60 (seconds, {low} to {high}) or /game stop.",
        "game_no_book": "This model's book is not available (yet) for the game; try again in a moment.",
        "scores_title": "<b>Real or dream? scores</b>",
        "scores_week": "<b>This week</b>",
        "scores_all": "<b>All time</b>",
        "scores_none": "No games played here yet. Start one with /game.",
        "fooled_title": "<b>Fooled by the model</b> (share of votes for its ending)",
        "fooled_line": "{model} T={temperature}: {share}% of {votes:vote|votes}",
        "fooled_none": "No game votes yet.",
        "inline_title": "T={temperature}",
        "inline_empty": "Type a seed to continue",
    }
)
ZH.update(
    {
        "copied_badge": "⚠ 有 {count} 个{unit}是从书里照抄的",
        "stitched_badge": "🧩 由书中的片段拼成：{share}% 的 8 元组是新的",
        "copied_every_draw": "每次都照抄了书（试了 {draws} 次）；这是最后一次。",
        "game_text": (
            "<b>真还是梦？</b>一个结尾是原书的，一个是 {model} 写的（T={temperature}）。\n\n"
            "<b>{seed}</b>…\n\n<b>A</b> …{a}\n\n<b>B</b> …{b}\n\n{status}"
        ),
        "game_reveal": (
            "<b>真还是梦？</b>\n\n<b>{seed}</b>…\n\n<b>A</b> …{a}\n\n<b>B</b> …{b}\n\n"
            "✅ <b>{real}</b> 是原书；{fake} 是 {model} 写的（T={temperature}）。\n{result}"
        ),
        "game_stopped_text": "<b>真还是梦？</b>已结束。原文是 <b>{real}</b>。",
        "game_left": "⏳ 还剩 {seconds} 秒 · {votes} 票",
        "game_ended": "⌛ 已结束 · {votes} 票",
        "game_more_lines": "……还有 {count} 行",
        "game_right": "猜对：{names}",
        "game_wrong": "被骗：{names}",
        "game_nobody": "没有人投票。",
        "game_score_line": "{rank}. {name}：{right}/{played}",
        "game_vote_a": "A 是原文",
        "game_vote_b": "B 是原文",
        "game_voted": "你的选择：{choice} 是原文",
        "game_over": "这局已经结束了。",
        "game_running": "这里已经有一局在进行；去投票，或用 /game stop 结束。",
        "game_none": "这里没有进行中的游戏。用 /game 开始一局。",
        "game_stop_denied": "只有开局的人或群管理员可以结束游戏。",
        "game_bad": "用 /game、/game 60（秒数，{low} 到 {high}）或 /game stop。",
        "game_no_book": "这个模型的书暂时不能用来玩，请稍后再试。",
        "scores_title": "<b>真还是梦？排行榜</b>",
        "scores_week": "<b>本周</b>",
        "scores_all": "<b>总榜</b>",
        "scores_none": "这里还没玩过。用 /game 开始一局。",
        "fooled_title": "<b>被模型骗到的比例</b>（投给模型结尾的票）",
        "fooled_line": "{model} T={temperature}：{votes} 票中 {share}%",
        "fooled_none": "还没有游戏投票。",
        "inline_title": "T={temperature}",
        "inline_empty": "输入开头让我续写",
    }
)


def language_of(code: str | None) -> str:
    """ "zh" for Chinese Telegram clients, "en" for everyone else."""
    return "zh" if code and code.lower().startswith("zh") else "en"


class _Count(int):
    """An integer that a message can write with its noun: "{votes:vote|votes}" -> "1 vote"."""

    def __format__(self, spec: str) -> str:
        if "|" in spec:
            one, many = spec.split("|", 1)
            return f"{int(self)} {one if self == 1 else many}"
        return format(int(self), spec)


def corpus_line(lang: str, corpus: str) -> str:
    """What a model writes, in a few words: a shipped corpus's description, else its name."""
    catalog = ZH if lang == "zh" else EN
    return catalog.get(f"corpus_{corpus}", corpus)


def text(lang: str, key: str, **values: object) -> str:
    """The message `key` in `lang`, filled with `values` (integers may carry their noun's
    singular and plural: "{samples:sample|samples}")."""
    catalog = ZH if lang == "zh" else EN
    counted = {k: _Count(v) if type(v) is int else v for k, v in values.items()}
    return catalog[key].format(**counted)


def command_list(lang: str) -> str:
    """The commands as lines of "/name - what it does"."""
    return "\n".join(f"/{name} - {about}" for name, about in COMMANDS["zh" if lang == "zh" else "en"])
