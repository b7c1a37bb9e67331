'use strict';
// The chat page: asks /v1/ask (Server-Sent Events) with the conversation so far, shows tokens
// as they arrive, then the checked answer: citations that light up their source, unsupported
// sentences marked, refusals said as such. Text from the service is only ever set as text.

const T = {
  en: {
    title: 'Ask the documents', new: 'New conversation', settings: 'Settings', key: 'API key',
    keyHint: 'Kept in this browser only. Not needed when the service checks no keys.',
    question: 'Your question', placeholder: 'Ask a question about the documents…', send: 'Ask',
    close: 'Close', helpful: 'Was this helpful?', up: 'Helpful', down: 'Not helpful',
    comment: 'Comment (optional)', sendFeedback: 'Send', thanks: 'Thank you — feedback saved.',
    rewrite: 'Searched for: ', notFound: 'The documents don’t say.',
    withheld: 'Withheld: the model’s answer is not supported by the documents.',
    showDraft: 'What the model wrote (not supported)', unsupported: 'Not supported by the sources',
    source: 'Source', page: 'page', sources: 'Sources', error: 'Error: ', cited: 'cited version replaced; showing the current one',
    chunk: 'part', of: 'of', conversation: 'Conversation',
  },
  ko: {
    title: '문서에 질문하기', new: '새 대화', settings: '설정', key: 'API 키',
    keyHint: '이 브라우저에만 저장됩니다. 서비스가 키를 확인하지 않으면 필요 없습니다.',
    question: '질문', placeholder: '문서에 대해 질문하세요…', send: '질문',
    close: '닫기', helpful: '도움이 되었나요?', up: '도움이 됨', down: '도움이 안 됨',
    comment: '의견 (선택)', sendFeedback: '보내기', thanks: '감사합니다. 의견이 저장되었습니다.',
    rewrite: '검색한 질문: ', notFound: '문서에 답이 없습니다.',
    withheld: '보류됨: 모델의 답변이 문서로 뒷받침되지 않습니다.',
    showDraft: '모델이 쓴 답변 (근거 없음)', unsupported: '출처로 뒷받침되지 않음',
    source: '출처', page: '쪽', sources: '출처', error: '오류: ', cited: '인용된 버전이 바뀌어 현재 버전을 보여 줍니다',
    chunk: '부분', of: '/', conversation: '대화',
  },
};
const lang = ((navigator.languages && navigator.languages[0]) || navigator.language || 'en')
  .toLowerCase().startsWith('ko') ? 'ko' : 'en';
const t = (k) => T[lang][k] ?? T.en[k];
const $ = (sel, root = document) => root.querySelector(sel);
const el = (tag, cls, text) => {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
};

const MAX_TURNS = 20;
// What a follow-up is rewritten from: the last turns, answers cut (the service reads no more).
const SENT_TURNS = 6;
const SENT_ANSWER_CHARS = 600;
// The answer being streamed, stopped when a new conversation starts.
let current = null;
let history = JSON.parse(sessionStorage.getItem('rag.history') || '[]');
const saveHistory = () => sessionStorage.setItem('rag.history', JSON.stringify(history.slice(-MAX_TURNS)));

function translate(root) {
  root.querySelectorAll('[data-i18n]').forEach((e) => { e.textContent = t(e.dataset.i18n); });
  root.querySelectorAll('[data-i18n-placeholder]').forEach((e) => { e.placeholder = t(e.dataset.i18nPlaceholder); });
  root.querySelectorAll('[data-i18n-label]').forEach((e) => { e.setAttribute('aria-label', t(e.dataset.i18nLabel)); });
}

function headers() {
  const h = { 'content-type': 'application/json' };
  const key = localStorage.getItem('rag.key');
  if (key) h.authorization = 'Bearer ' + key;
  return h;
}

async function errorText(resp) {
  try { const b = await resp.json(); return b.error.message; } catch { return resp.status + ' ' + resp.statusText; }
}

// Text with [n] turned into buttons that light up source n of this turn.
function withCitations(text, turn, count) {
  const frag = document.createDocumentFragment();
  let last = 0;
  for (const m of text.matchAll(/\[(\d+)\]/g)) {
    const n = Number(m[1]);
    if (n < 1 || n > count) continue;
    frag.append(text.slice(last, m.index));
    const b = el('button', 'cite', `[${n}]`);
    b.type = 'button';
    b.setAttribute('aria-label', `${t('source')} ${n}`);
    b.addEventListener('click', () => light(turn, n));
    frag.append(b);
    last = m.index + m[0].length;
  }
  frag.append(text.slice(last));
  return frag;
}

function light(turn, n) {
  turn.querySelectorAll('.card').forEach((c) => c.classList.toggle('lit', c.dataset.n === String(n)));
  const card = turn.querySelector(`.card[data-n="${n}"]`);
  if (card) { card.scrollIntoView({ block: 'nearest', behavior: 'smooth' }); card.focus(); }
}

function where(chunk) {
  const parts = [];
  if (chunk.page) parts.push(`${t('page')} ${chunk.page}`);
  if (chunk.heading) parts.push(chunk.heading);
  return parts.join(' · ');
}

// A chunk's text as a reader sees it on a card: Markdown's marks (headings, emphasis, code,
// links, list bullets, table bars) taken out, lines joined.
function plain(text) {
  return text
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/^\s{0,3}(#{1,6}\s+|>\s?|[-*+]\s+|\d+[.)]\s+)/gm, '')
    .replace(/(\*\*|__|\*|`+)/g, '')
    .replace(/^\s*\|?[-:| ]+\|?\s*$/gm, '')
    .replace(/\|/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
}

function renderSources(turn, sources) {
  const list = $('.sources', turn);
  list.replaceChildren();
  list.setAttribute('aria-label', t('sources'));
  for (const s of sources) {
    const c = s.chunk;
    const li = el('li');
    const card = el('button', 'card');
    card.type = 'button';
    card.dataset.n = s.number;
    card.append(el('span', 'n', `[${s.number}] `), el('span', 'doc', c.title || c.source_path));
    const w = where(c);
    card.append(el('span', 'where', [c.source_path !== c.title ? c.source_path : '', w].filter(Boolean).join(' · ')));
    card.append(el('span', 'snippet', plain(c.text).slice(0, 200)));
    card.addEventListener('click', () => openSource(c));
    li.append(card);
    list.append(li);
  }
}

async function openSource(chunk) {
  const dialog = $('#viewer');
  $('#viewer-title').textContent = chunk.title || chunk.source_path;
  $('#viewer-meta').textContent = chunk.source_path;
  const body = $('#viewer-body');
  body.replaceChildren(el('p', 'meta', '…'));
  if (!dialog.open) dialog.showModal();
  $('#viewer-close').focus();
  const url = `/v1/documents/${encodeURIComponent(chunk.document_id)}/chunks/${chunk.chunk_index}` +
    `?version=${encodeURIComponent(chunk.document_version)}&around=2`;
  const resp = await fetch(url, { headers: headers() });
  if (!resp.ok) { body.replaceChildren(el('p', 'error', t('error') + await errorText(resp))); return; }
  const doc = await resp.json();
  const meta = [doc.source_path, `${t('chunk')} ${doc.chunk_index + 1} ${t('of')} ${doc.chunk_count}`];
  if (!doc.cited_version) meta.push(t('cited'));
  $('#viewer-meta').textContent = meta.join(' · ');
  body.replaceChildren();
  for (const c of doc.chunks) {
    const p = el('p', c.chunk_index === doc.chunk_index ? 'ctx focus' : 'ctx');
    const h = [c.heading, c.page ? `${t('page')} ${c.page}` : ''].filter(Boolean).join(' · ');
    if (h) p.append(el('span', 'h', h));
    p.append(c.text);
    body.append(p);
    if (c.chunk_index === doc.chunk_index) p.scrollIntoView({ block: 'center' });
  }
}

function renderAnswer(turn, state, a) {
  const box = $('.answer', turn);
  box.setAttribute('aria-busy', 'false');
  box.replaceChildren();
  const count = state.sources.length;
  const notice = $('.notice', turn);
  // A refusal or a withheld answer is said once, by the notice below (the service's own
  // not-found text would say it a second time).
  const refused = a.status === 'not_found' || a.status === 'unsupported';
  if (a.status === 'answered' && a.sentences.length) {
    a.sentences.forEach((s, i) => {
      const span = el('span', s.supported ? 'sentence' : 'sentence unsupported');
      if (!s.supported) span.title = t('unsupported');
      span.append(withCitations(s.text, turn, count));
      if (!s.supported) span.append(el('span', 'sr', ` (${t('unsupported')})`));
      box.append(span, i + 1 < a.sentences.length ? ' ' : '');
    });
  } else if (!refused) {
    box.append(withCitations(a.text, turn, count));
  }
  if (a.status === 'not_found') {
    notice.textContent = t('notFound');
    notice.className = 'notice none';
    notice.hidden = false;
  } else if (a.status === 'unsupported') {
    notice.textContent = t('withheld');
    notice.className = 'notice';
    notice.hidden = false;
    if (a.draft) {
      const d = el('details');
      d.append(el('summary', '', t('showDraft')), el('p', 'unsupported', a.draft));
      box.append(d);
    }
  }
  // Only the cited sources stay lit up; uncited ones are still there to open.
  const cited = new Set(a.citations.map((c) => c.number));
  turn.querySelectorAll('.card').forEach((c) => c.classList.toggle('cited', cited.has(Number(c.dataset.n))));
}

function setUpFeedback(turn, state, answer) {
  const box = $('.feedback', turn);
  box.hidden = false;
  const form = $('.comment', box);
  let rating = null;
  for (const r of ['up', 'down']) {
    $('.' + r, box).addEventListener('click', (e) => {
      rating = r;
      box.querySelectorAll('.up,.down').forEach((b) => b.setAttribute('aria-pressed', String(b === e.currentTarget)));
      form.hidden = false;
      $('input', form).focus();
    });
  }
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const cited = new Set(answer.citations.map((c) => c.number));
    const body = {
      rating, comment: $('input', form).value, question: state.question,
      rewritten_question: state.rewrite || null, answer: answer.text, status: answer.status,
      sources: state.sources.map((s) => ({
        number: s.number, document_id: s.chunk.document_id, source_path: s.chunk.source_path,
        page: s.chunk.page, chunk_index: s.chunk.chunk_index, cited: cited.has(s.number),
      })),
    };
    const resp = await fetch('/v1/feedback', { method: 'POST', headers: headers(), body: JSON.stringify(body) });
    $('.thanks', box).textContent = resp.ok ? t('thanks') : t('error') + await errorText(resp);
    if (resp.ok) form.hidden = true;
  });
}

function newTurn(question) {
  const turn = $('#turn').content.firstElementChild.cloneNode(true);
  translate(turn);
  $('.q', turn).textContent = question;
  $('#log').append(turn);
  return turn;
}

async function ask(question) {
  const turn = newTurn(question);
  turn.scrollIntoView({ block: 'end' });
  const state = { question, sources: [], text: '', rewrite: null };
  const box = $('.answer', turn);
  const abort = new AbortController();
  current = abort;
  const sent = history.slice(-SENT_TURNS).map((h) => ({
    question: h.question, answer: h.answer.slice(0, SENT_ANSWER_CHARS),
  }));
  const fail = (message) => {
    box.setAttribute('aria-busy', 'false');
    box.append(el('p', 'error', t('error') + message));
  };
  let resp;
  try {
    resp = await fetch('/v1/ask', {
      method: 'POST', headers: { ...headers(), accept: 'text/event-stream' },
      body: JSON.stringify({ question, history: sent }), signal: abort.signal,
    });
  } catch (e) {
    if (!abort.signal.aborted) fail(e.message);
    return;
  }
  if (!resp.ok) {
    box.setAttribute('aria-busy', 'false');
    box.replaceChildren(el('span', 'error', t('error') + await errorText(resp)));
    return;
  }
  const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  let pendingCR = false;
  for (;;) {
    let chunk;
    try { chunk = await reader.read(); } catch (e) { if (!abort.signal.aborted) fail(e.message); return; }
    const { value, done } = chunk;
    if (done) break;
    // Line ends may be CRLF or CR (a proxy): a CR ending a chunk waits for what follows it.
    let text = (pendingCR ? '\r' : '') + value;
    pendingCR = text.endsWith('\r');
    if (pendingCR) text = text.slice(0, -1);
    buffer += text.replace(/\r\n?/g, '\n');
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = 'message';
      const data = [];
      for (const line of block.split('\n')) {
        if (line.startsWith('event:')) event = line.slice(6).trim();
        else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
      }
      if (!data.length) continue;
      let ev;
      try { ev = JSON.parse(data.join('\n')); } catch (e) { fail(e.message); reader.cancel(); return; }
      if (event === 'rewrite') {
        state.rewrite = ev.question;
        // A follow-up searched as asked needs no "Searched for:" line repeating it.
        if (ev.by !== 'as_asked') {
          const r = $('.rewrite', turn);
          r.textContent = t('rewrite') + ev.question;
          r.hidden = false;
        }
      } else if (event === 'sources') {
        state.sources = ev.sources;
        renderSources(turn, ev.sources);
      } else if (event === 'token') {
        state.text += ev.text;
        box.textContent = state.text;
      } else if (event === 'answer') {
        renderAnswer(turn, state, ev);
        // Only into the conversation it was asked in (not one started meanwhile).
        if (current === abort) {
          history.push({ question, answer: ev.text });
          saveHistory();
        }
        setUpFeedback(turn, state, ev);
      } else if (event === 'error') {
        fail(ev.error.message);
      }
    }
  }
}

function showHistory() {
  for (const h of history) {
    const turn = newTurn(h.question);
    const box = $('.answer', turn);
    box.setAttribute('aria-busy', 'false');
    box.textContent = h.answer;
  }
}

document.addEventListener('DOMContentLoaded', () => {
  document.documentElement.lang = lang;
  translate(document);
  document.title = t('title');
  $('#log').setAttribute('aria-label', t('conversation'));
  const key = $('#key');
  key.value = localStorage.getItem('rag.key') || '';
  key.addEventListener('change', () => localStorage.setItem('rag.key', key.value.trim()));
  showHistory();
  const form = $('#ask');
  const q = $('#question');
  const send = $('#send');
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const question = q.value.trim();
    if (!question || send.disabled) return;
    q.value = '';
    send.disabled = true;
    try { await ask(question); } finally { send.disabled = false; q.focus(); }
  });
  // Enter sends; Shift+Enter is a new line.
  q.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); form.requestSubmit(); }
  });
  $('#new').addEventListener('click', () => {
    if (current) current.abort();
    current = null;
    history = [];
    saveHistory();
    $('#log').replaceChildren();
    q.focus();
  });
  $('#viewer-close').addEventListener('click', () => $('#viewer').close());
  q.focus();
});
