// The sandbox chat page: long-polls /sandbox/state and renders chats, messages and keyboards.
"use strict";

const $ = (id) => document.getElementById(id);
let state = null;
let userId = null;
let chatId = null;
let replyTo = null;
let seenToasts = null; // toast ids already shown (null until the first state: those are old news)
let sending = false;

// Render text with Telegram entities (offsets are UTF-16, like JavaScript strings).
function renderText(text, entities) {
  const frag = document.createDocumentFragment();
  const ents = (entities || []).filter((e) => e.type !== "bot_command" && e.type !== "mention" && e.type !== "hashtag");
  let pos = 0;
  const cuts = new Set([0, text.length]);
  for (const e of ents) { cuts.add(e.offset); cuts.add(e.offset + e.length); }
  const points = [...cuts].filter((p) => p <= text.length).sort((a, b) => a - b);
  for (let i = 0; i < points.length - 1; i++) {
    const [start, end] = [points[i], points[i + 1]];
    const active = ents.filter((e) => e.offset <= start && e.offset + e.length >= end);
    let node = document.createTextNode(text.slice(start, end));
    for (const e of active) {
      const tag = { bold: "b", italic: "i", underline: "u", strikethrough: "s", code: "code", pre: "pre", text_link: "a", spoiler: "span", blockquote: "blockquote" }[e.type];
      if (!tag) continue;
      const wrap = document.createElement(tag);
      if (e.type === "text_link") { wrap.href = e.url; wrap.target = "_blank"; wrap.rel = "noopener"; }
      if (e.type === "spoiler") wrap.className = "spoiler";
      wrap.appendChild(node);
      node = wrap;
    }
    frag.appendChild(node);
    pos = end;
  }
  return frag;
}

// A photo as Telegram shows it: the picture, its largest size, served by the sandbox.
function renderPhoto(photo) {
  const size = photo[photo.length - 1];
  const img = el("img", "photo");
  img.src = `/sandbox/file/${encodeURIComponent(size.file_unique_id)}`;
  img.width = size.width; // the width and height attributes hold the space while it loads
  img.height = size.height;
  img.alt = `photo, ${size.width}×${size.height}`;
  return img;
}

// One line for a message in the chat list and in a quote: its text, else what it is.
function summary(m) {
  if (m.text !== undefined) return m.text;
  if (m.photo) return "🖼 " + (m.caption || "Photo");
  return m.sticker ? "[sticker]" : "[message]";
}

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  return node;
}

// The red banner while the server cannot be reached; polling clears it once the server answers.
function setOnline(online) { $("offline").hidden = online; }

// POST a JSON body; true when the server accepted it (a network failure shows the banner).
async function post(path, body) {
  try {
    const resp = await fetch(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    return resp.ok;
  } catch (err) {
    setOnline(false);
    return false;
  }
}

function currentChat() { return state && state.chats.find((c) => c.id === chatId); }

function visibleChats() {
  // A person sees their private chat with the bot and the groups they are in.
  return state.chats.filter((c) => c.members.includes(userId));
}

function renderUsers() {
  const select = $("user");
  if (select.options.length !== state.users.length) {
    select.innerHTML = "";
    for (const u of state.users) select.appendChild(new Option(`${u.first_name} (${u.language_code})`, u.id));
  }
  if (userId === null && state.users.length) userId = state.users[0].id;
  select.value = String(userId);
}

function renderChats() {
  const nav = $("chats");
  nav.innerHTML = "";
  const chats = visibleChats();
  if (!chats.some((c) => c.id === chatId)) chatId = chats.length ? chats[0].id : null;
  for (const c of chats) {
    const b = el("button", c.id === chatId ? "active" : "");
    b.textContent = c.info.type === "private" ? `🤖 ${state.bot.first_name}` : `👥 ${c.info.title}`;
    const last = c.messages[c.messages.length - 1];
    b.appendChild(el("small", "", last ? summary(last).slice(0, 40) : "no messages yet"));
    b.onclick = () => { chatId = c.id; replyTo = null; render(); };
    nav.appendChild(b);
  }
}

// The reaction picker under a bot message: a few emoji (and any other already set), each with
// its count; yours are highlighted. A click sets yours or takes it back (one at a time, as in
// Telegram without Premium).
const PICKER = ["👍", "❤", "🔥", "👎", "💩", "🎉"];
function renderReactions(chatIdOfMessage, m) {
  const row = el("div", "reactions");
  const counts = new Map((m.reactions || []).map((r) => [r.emoji, r]));
  const shown = [...PICKER, ...[...counts.keys()].filter((e) => !PICKER.includes(e))];
  for (const emoji of shown) {
    const r = counts.get(emoji);
    const b = el("button", r && r.users.includes(userId) ? "chosen" : "", r && r.count ? `${emoji} ${r.count}` : emoji);
    b.title = `react ${emoji}`;
    b.setAttribute("aria-pressed", String(b.className === "chosen"));
    b.onclick = () => post("/sandbox/react", { user_id: userId, chat_id: chatIdOfMessage, message_id: m.message_id, emoji });
    row.appendChild(b);
  }
  return row;
}

function renderMessages() {
  const chat = currentChat();
  const box = $("messages");
  const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
  box.innerHTML = "";
  $("title").textContent = chat ? (chat.info.type === "private" ? `Private chat with @${state.bot.username}` : `${chat.info.title} (group)`) : "";
  if (!chat) return;
  for (const m of chat.messages) {
    const mine = m.from.id === userId;
    const div = el("div", "msg" + (mine ? " mine" : ""));
    if (!mine) div.appendChild(el("div", "who", m.from.is_bot ? m.from.first_name : m.from.first_name));
    if (m.via_bot) div.appendChild(el("div", "via", `via @${m.via_bot.username}`));
    if (m.reply_to_message) div.appendChild(el("div", "quote", summary(m.reply_to_message)));
    const body = el("div");
    if (m.photo) body.appendChild(renderPhoto(m.photo));
    if (m.text !== undefined) body.appendChild(renderText(m.text, m.entities));
    else if (m.caption !== undefined) body.appendChild(renderText(m.caption, m.caption_entities));
    else if (!m.photo) body.appendChild(document.createTextNode(summary(m)));
    div.appendChild(body);
    const kb = m.reply_markup && m.reply_markup.inline_keyboard;
    if (kb) {
      const grid = el("div", "kb");
      for (const row of kb) {
        const r = el("div", "row");
        for (const btn of row) {
          const b = el("button", "", btn.text);
          b.title = btn.text; // the whole label on hover, when the button cuts it with an ellipsis
          b.onclick = () => post("/sandbox/press", { user_id: userId, chat_id: chat.id, message_id: m.message_id, data: btn.callback_data });
          r.appendChild(b);
        }
        grid.appendChild(r);
      }
      div.appendChild(grid);
    }
    if (m.from.is_bot) div.appendChild(renderReactions(chat.id, m));
    const meta = el("div", "meta", (m.edit_date ? "edited " : "") + new Date(m.date * 1000).toLocaleTimeString());
    if (m.from.is_bot) {
      const rb = el("button", "reply", "reply ");
      rb.onclick = () => { replyTo = m.message_id; render(); $("text").focus(); };
      meta.prepend(rb);
    }
    div.appendChild(meta);
    box.appendChild(div);
  }
  if (atBottom) box.scrollTop = box.scrollHeight;
  // The server clears "typing" when the bot answers; a chat action alone lasts 5 s (typing_s is what is left).
  $("typing").hidden = !chat.typing;
  clearTimeout(renderMessages.typingTimer);
  if (chat.typing) renderMessages.typingTimer = setTimeout(() => { $("typing").hidden = true; }, chat.typing_s * 1000);
  $("replying").hidden = replyTo === null;
  $("replying").textContent = replyTo === null ? "" : "replying to the bot's message (Esc to cancel)";
}

function renderCommands() {
  const me = state.users.find((u) => u.id === userId);
  const lang = me && me.language_code.startsWith("zh") && state.commands.zh ? "zh" : "default";
  const list = $("commands");
  list.innerHTML = "";
  for (const c of state.commands[lang] || []) {
    const li = el("li");
    li.appendChild(el("b", "", "/" + c.command));
    li.appendChild(document.createTextNode(" " + c.description));
    li.onclick = () => { $("text").value = "/" + c.command + " "; list.hidden = true; $("text").focus(); };
    list.appendChild(li);
  }
}

function showToasts() {
  if (seenToasts === null) { seenToasts = new Set(state.toasts.map((t) => t.id)); return; }
  const fresh = state.toasts.filter((t) => !seenToasts.has(t.id));
  for (const t of fresh) seenToasts.add(t.id);
  const latest = fresh[fresh.length - 1];
  if (!latest) return;
  const t = $("toast");
  t.textContent = latest.text;
  t.hidden = false;
  clearTimeout(showToasts.timer);
  showToasts.timer = setTimeout(() => { t.hidden = true; }, latest.alert ? 5000 : 2000);
}

function render() {
  if (!state) return;
  renderUsers();
  renderChats();
  renderMessages();
  renderCommands();
  showToasts();
}

async function poll() {
  let since = -1;
  for (;;) {
    try {
      const resp = await fetch(`/sandbox/state?since=${since}`);
      if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
      state = await resp.json();
      since = state.version;
      setOnline(true);
      render();
    } catch (err) {
      // The server is gone (or restarting, with a fresh state): ask for everything once it is back.
      setOnline(false);
      since = -1;
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}

$("user").onchange = (e) => { userId = Number(e.target.value); replyTo = null; render(); };
$("menu").onclick = () => { $("commands").hidden = !$("commands").hidden; };
$("text").onkeydown = (e) => { if (e.key === "Escape") { replyTo = null; $("commands").hidden = true; render(); } };
$("composer").onsubmit = async (e) => {
  e.preventDefault();
  const input = $("text");
  const text = input.value;
  if (!text.trim() || chatId === null || sending) return;
  // The text stays in the box until the server has it, so nothing typed is lost while offline.
  sending = true;
  const sent = await post("/sandbox/send", { user_id: userId, chat_id: chatId, text, reply_to: replyTo });
  sending = false;
  if (!sent) return;
  if (input.value === text) input.value = "";
  replyTo = null;
  render();
};
// Inline mode: typing "@botname seed" asks the bot (after a short pause) and lists its results;
// picking one posts it in this chat via the bot, as Telegram does.
async function askInline(query) {
  const list = $("inline");
  try {
    const resp = await fetch("/sandbox/inline", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ user_id: userId, chat_id: chatId, query }) });
    if (!resp.ok) return;
    const { query_id: queryId } = await resp.json();
    let answer = { answered: false, results: [] };
    for (let i = 0; i < 4 && !answer.answered; i++) answer = await (await fetch(`/sandbox/inline/${queryId}`)).json();
    if (askInline.latest !== query) return; // the user typed on: a newer query is on its way
    list.innerHTML = "";
    if (!answer.results.length) list.appendChild(el("li", "", answer.answered ? "no results" : "the bot did not answer"));
    for (const r of answer.results) {
      const li = el("li");
      li.appendChild(el("b", "", r.title));
      li.appendChild(el("small", "", r.description));
      li.onclick = async () => {
        if (await post("/sandbox/choose", { user_id: userId, chat_id: chatId, query_id: queryId, result_id: r.id })) {
          $("text").value = "";
          list.hidden = true;
        }
      };
      list.appendChild(li);
    }
    list.hidden = false;
  } catch (err) {
    setOnline(false);
  }
}

$("text").addEventListener("input", () => {
  const value = $("text").value;
  const prefix = state ? `@${state.bot.username} ` : null;
  clearTimeout(askInline.timer);
  if (!prefix || !value.toLowerCase().startsWith(prefix.toLowerCase()) || chatId === null) {
    $("inline").hidden = true;
    askInline.latest = null;
    return;
  }
  const query = value.slice(prefix.length);
  askInline.latest = query;
  askInline.timer = setTimeout(() => askInline(query), 400);
});
poll();
