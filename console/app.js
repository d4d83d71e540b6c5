/* The agent console.  Plain script, no build step.  Every text that comes from a customer, a
 * platform or the server is put on the page with textContent (never innerHTML), and links
 * and images point only at this gateway's own routes. */
'use strict';
(function () {
  var t = window.t;
  var $ = function (id) { return document.getElementById(id); };
  var state = {
    me: null, view: 'mine', open: null, convs: {}, drafts: {}, stream: null,
    refreshTimer: null, lastSearch: '', convSeq: 0, listSeq: 0,
    teamOpen: false, teamTimer: null, teamSeq: 0
  };

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  function translatePage() {
    document.documentElement.lang = window.dbLang;
    document.querySelectorAll('[data-t]').forEach(function (e) { e.textContent = t(e.getAttribute('data-t')); });
    document.querySelectorAll('[data-tp]').forEach(function (e) { e.placeholder = t(e.getAttribute('data-tp')); });
  }

  /* One call to the console's API; rejects with {status, code}.  A 401 shows the sign-in. */
  function api(method, path, body) {
    var opt = { method: method, credentials: 'same-origin', headers: {} };
    if (body !== undefined) {
      opt.headers['Content-Type'] = 'application/json';
      opt.body = JSON.stringify(body);
    }
    return fetch('/console/api/' + path, opt).then(function (r) {
      return r.text().then(function (txt) {
        var data = null;
        try { data = txt ? JSON.parse(txt) : null; } catch (e) { data = null; }
        if (r.status === 401 && path !== 'signin') showSignin();
        if (!r.ok) {
          var code = data && data.error && data.error.code;
          throw { status: r.status, code: code || 'error' };
        }
        return data;
      });
    });
  }

  /* ---- signing in ---- */

  function showSignin() {
    if (state.stream) { state.stream.close(); state.stream = null; }
    if (state.teamOpen) showTeam(false);
    state.me = null;
    $('app').hidden = true;
    $('signin').hidden = false;
    var m = /^#invite=([0-9a-f]{64})$/.exec(location.hash);
    $('signin-form').hidden = !!m;
    $('invite-form').hidden = !m;
  }

  function failText(err) {
    if (err.status === 429) return t('too_many');
    if (err.code === 'invalid_link') return t('invalid_link');
    if (err.status === 401) return t('wrong_secret');
    return t('error');
  }

  $('signin-form').addEventListener('submit', function (ev) {
    ev.preventDefault();
    $('signin-error').textContent = '';
    api('POST', 'signin', { agent: $('signin-agent').value, secret: $('signin-secret').value })
      .then(function () { $('signin-secret').value = ''; start(); })
      .catch(function (err) { $('signin-error').textContent = failText(err); });
  });

  $('invite-form').addEventListener('submit', function (ev) {
    ev.preventDefault();
    var m = /^#invite=([0-9a-f]{64})$/.exec(location.hash);
    $('invite-error').textContent = '';
    api('POST', 'invite', { token: m ? m[1] : '', secret: $('invite-secret').value })
      .then(function () {
        $('invite-secret').value = '';
        history.replaceState(null, '', location.pathname);
        start();
      })
      .catch(function (err) { $('invite-error').textContent = failText(err); });
  });

  $('signout').addEventListener('click', function () {
    api('POST', 'signout', {}).finally(showSignin);
  });

  /* ---- the inbox ---- */

  function ago(ms) {
    if (!ms) return '';
    var s = Math.max(0, Math.round((Date.now() - ms) / 1000));
    if (s < 60) return s + '\u00a0' + t('unit_s');
    if (s < 3600) return Math.round(s / 60) + '\u00a0' + t('unit_min');
    return Math.round(s / 3600) + '\u00a0' + t('unit_h');
  }

  /* How long the customer has waited: since their last message when it is unanswered. */
  function waitingSince(c) {
    if (!c.last_message_at) return 0;
    if (c.last_reply_at && c.last_reply_at >= c.last_message_at) return 0;
    return c.last_message_at;
  }

  function customerName(c) {
    return (c.name || c.username || c.chat || c.id || '').toString();
  }

  function renderList(items) {
    var ul = $('list');
    ul.textContent = '';
    if (!items.length) ul.appendChild(el('li', 'meta', t('nothing')));
    items.forEach(function (c) {
      state.convs[c.id] = c;
      var li = el('li', c.id === state.open ? 'sel' : '');
      li.setAttribute('data-id', c.id);
      var name = el('span', 'name', customerName(c));
      name.dir = 'auto';
      li.appendChild(name);
      li.appendChild(el('span', 'unread', c.unread ? c.unread : ''));
      var since = waitingSince(c);
      var meta = el('span', 'meta prio-' + (c.priority || 'normal'),
        (c.platform || '') + ' · ' + (c.account || '') + ' · ' + t(c.priority || 'normal') +
        (since ? ' · ' + t('waiting') + ' ' + ago(since) : ''));
      li.appendChild(meta);
      li.addEventListener('click', function () { openConv(c.id); });
      ul.appendChild(li);
    });
  }

  function loadList() {
    if (state.view === 'search') return runSearch(state.lastSearch);
    var view = state.view, seq = ++state.listSeq;
    return api('GET', 'conversations?view=' + view).then(function (d) {
      /* Answers may cross: only the newest request's is drawn. */
      if (seq !== state.listSeq) return;
      var items = d.conversations || [];
      items.sort(function (a, b) { return (b.last_message_at || 0) - (a.last_message_at || 0); });
      $('count-' + view).textContent = items.length ? String(items.length) : '';
      if (state.view === view) renderList(items);
    }).catch(function () {});
  }

  /* A supervisor's counters of its tenant, in the header. */
  function loadStats() {
    if (!state.me || state.me.role !== 'supervisor') return;
    api('GET', 'stats').then(function (st) {
      $('stats').textContent = t('open') + ' ' + st.open + ' · ' + t('queue') + ' ' + st.queued +
        ' · ' + t('online') + ' ' + st.agents_online;
    }).catch(function () {});
  }

  /* ---- a supervisor's team figures ---- */

  /* A duration as people say it: "1 min 30 s", "2 h 5 min"; "—" when there is none. */
  function duration(ms) {
    if (ms === null || ms === undefined) return '\u2014';
    var nb = '\u00a0';
    if (ms < 1000) return t('under_1s') + nb + t('unit_s');
    var s = Math.round(ms / 1000);
    if (s < 60) return s + nb + t('unit_s');
    if (s < 3600) {
      var m = Math.floor(s / 60), rs = s % 60;
      return m + nb + t('unit_min') + (rs ? ' ' + rs + nb + t('unit_s') : '');
    }
    var h = Math.floor(s / 3600), rm = Math.round((s % 3600) / 60);
    if (rm === 60) { h++; rm = 0; }
    return h + nb + t('unit_h') + (rm ? ' ' + rm + nb + t('unit_min') : '');
  }

  /* An average of 1-5 answers with their count: "4.5 (2)"; "—" without answers. */
  function csat(w) {
    if (!w || w.average === null || w.average === undefined || !w.count) return '\u2014';
    return Number(w.average).toLocaleString(window.dbLang, { minimumFractionDigits: 1, maximumFractionDigits: 1 }) +
      ' (' + w.count + ')';
  }

  /* One row: the first cells given (texts), then the figures of f, hour and day each. */
  function figuresRow(first, f) {
    var tr = el('tr');
    first.forEach(function (c) { tr.appendChild(el('td', c.cls || null, c.text)); });
    f = f || {};
    var hd = f.handled || {}, fr = f.first_response || {}, sa = f.satisfaction || {};
    [
      ['handled.hour', hd.hour === undefined ? '\u2014' : String(hd.hour)],
      ['handled.day', hd.day === undefined ? '\u2014' : String(hd.day)],
      ['median.hour', duration(fr.hour && fr.hour.median_ms)],
      ['median.day', duration(fr.day && fr.day.median_ms)],
      ['p90.hour', duration(fr.hour && fr.hour.p90_ms)],
      ['p90.day', duration(fr.day && fr.day.p90_ms)],
      ['csat.hour', csat(sa.hour)],
      ['csat.day', csat(sa.day)]
    ].forEach(function (c) {
      var td = el('td', c[1] === '\u2014' ? 'none' : null, c[1]);
      td.setAttribute('data-k', c[0]);
      tr.appendChild(td);
    });
    return tr;
  }

  function renderTeam(d) {
    var agents = d.agents || {}, accounts = d.accounts || {};
    var tb = document.querySelector('#team-agents tbody');
    tb.textContent = '';
    Object.keys(agents).map(function (id) { return { id: id, a: agents[id] || {} }; })
      .sort(function (x, y) { return String(x.a.name || x.id).localeCompare(String(y.a.name || y.id)) || (x.id < y.id ? -1 : 1); })
      .forEach(function (r) {
        var name = r.a.name && r.a.name !== r.id ? r.a.name + ' (' + r.id + ')' : r.id;
        var tr = figuresRow([{ text: name }, { text: t(r.a.presence || 'offline'), cls: 'presence' }], r.a);
        tr.setAttribute('data-agent', r.id);
        tr.firstChild.dir = 'auto';
        tr.firstChild.title = name;
        tb.appendChild(tr);
      });
    if (!tb.firstChild) tb.appendChild(el('tr')).appendChild(el('td', 'none', t('nothing'))).colSpan = 10;
    var tba = document.querySelector('#team-accounts tbody');
    tba.textContent = '';
    Object.keys(accounts).sort().forEach(function (k) {
      var i = k.indexOf(':');
      var tr = figuresRow([{ text: i > 0 ? k.slice(0, i) + ' · ' + k.slice(i + 1) : k }], accounts[k]);
      tr.setAttribute('data-account', k);
      tba.appendChild(tr);
    });
    if (!tba.firstChild) tba.appendChild(el('tr')).appendChild(el('td', 'none', t('nothing'))).colSpan = 9;
    var all = d.satisfaction || {};
    $('team-csat').textContent = t('csat_overall') + ': ' + t('hour') + ' ' + csat(all.hour) + ' · ' +
      t('day') + ' ' + csat(all.day);
    $('team-updated').textContent = t('updated') + ' ' + new Date().toLocaleTimeString(window.dbLang);
  }

  /* The figures cost the server a pass over a day's samples: fetched when the view opens,
   * on Refresh, and every minute while it stays open, never at live events. */
  function loadTeam() {
    var seq = ++state.teamSeq;
    return api('GET', 'stats/agents').then(function (d) {
      if (seq !== state.teamSeq || !state.teamOpen) return;
      $('team-error').textContent = '';
      renderTeam(d);
    }).catch(function (err) {
      if (seq === state.teamSeq) $('team-error').textContent = t('error') + ' (' + (err.status || '') + ')';
    });
  }

  function showTeam(on) {
    state.teamOpen = on;
    $('team').hidden = !on;
    $('app').classList.toggle('team-open', on);
    if (state.teamTimer) { clearInterval(state.teamTimer); state.teamTimer = null; }
    if (!on) return;
    loadTeam();
    state.teamTimer = setInterval(loadTeam, 60000);
  }

  $('team-open').addEventListener('click', function () { showTeam(true); });
  $('team-close').addEventListener('click', function () { showTeam(false); });
  $('team-refresh').addEventListener('click', loadTeam);

  function loadCounts() {
    loadStats();
    ['mine', 'queue'].concat(state.me && state.me.role === 'supervisor' ? ['all'] : []).forEach(function (v) {
      if (v === state.view) return;
      api('GET', 'conversations?view=' + v).then(function (d) {
        var n = (d.conversations || []).length;
        $('count-' + v).textContent = n ? String(n) : '';
      }).catch(function () {});
    });
  }

  document.querySelectorAll('#views button').forEach(function (b) {
    b.addEventListener('click', function () {
      state.view = b.getAttribute('data-view');
      document.querySelectorAll('#views button').forEach(function (x) { x.classList.toggle('on', x === b); });
      loadList();
    });
  });

  /* ---- search ---- */

  function runSearch(q) {
    state.lastSearch = q;
    var seq = ++state.listSeq;
    return api('GET', 'search?q=' + encodeURIComponent(q)).then(function (d) {
      if (state.view === 'search' && seq === state.listSeq) renderList(d.conversations || []);
    }).catch(function () {});
  }

  $('search-form').addEventListener('submit', function (ev) {
    ev.preventDefault();
    var q = $('search').value.trim();
    if (!q) return;
    state.view = 'search';
    $('view-search').hidden = false;
    document.querySelectorAll('#views button').forEach(function (x) { x.classList.toggle('on', x.id === 'view-search'); });
    runSearch(q);
  });

  /* ---- one conversation ---- */

  function mediaUrl(c, media) {
    if (!media || typeof media.id !== 'string') return null;
    return '/console/api/media/' + encodeURIComponent(c.platform) + '/' +
      encodeURIComponent(c.account) + '/' + encodeURIComponent(media.id);
  }

  function renderItem(c, it) {
    var li;
    if (it.dir === 'in') {
      var ev = it.event || {};
      li = el('li', 'in');
      li.appendChild(el('span', 'who', (ev.sender && ev.sender.name) || customerName(c)));
      var url = mediaUrl(c, ev.media);
      if (url && (ev.type === 'image' || ev.type === 'sticker')) {
        var img = el('img');
        img.alt = t(ev.type);
        img.src = url;
        li.appendChild(img);
      } else if (url) {
        var a = el('a', null, t(ev.type || 'document') + ': ' + ((ev.media && ev.media.file_name) || t('open_file')));
        a.href = url;
        a.target = '_blank';
        a.rel = 'noopener noreferrer';
        li.appendChild(a);
      } else if (ev.type === 'location' && ev.location) {
        li.appendChild(el('span', null, t('location') + ': ' + ev.location.latitude + ', ' + ev.location.longitude));
      }
      var body = el('span', 'text', ev.text !== undefined ? ev.text : (url ? '' : t('no_text')));
      body.dir = 'auto';
      li.appendChild(body);
    } else {
      li = el('li', 'out' + (it.automatic ? ' auto' : ''));
      li.appendChild(el('span', 'who', it.automatic ? t('automatic') + (it.rule ? ' · ' + it.rule : '') : (it.agent || '')));
      var text = el('span', 'text', it.text !== undefined ? it.text : t('reply_api'));
      text.dir = 'auto';
      li.appendChild(text);
      var st = it.status || 'queued';
      var tick = el('span', 'tick ' + st, t(st) + (st === 'failed' && it.error_message ? ': ' + it.error_message : ''));
      tick.setAttribute('data-status', st);
      tick.setAttribute('data-id', it.id || '');
      li.appendChild(tick);
    }
    li.dir = 'auto';
    return li;
  }

  function renderConv(c) {
    state.convs[c.id] = Object.assign(state.convs[c.id] || {}, c);
    $('empty').hidden = true;
    $('conv').hidden = false;
    var name = $('conv-name');
    name.textContent = customerName(c);
    name.dir = 'auto';
    $('conv-meta').textContent = [c.platform, c.account, c.language, t(c.state === 'closed' ? 'state_closed' : c.state || '')]
      .filter(Boolean).join(' · ');
    $('conv-priority').value = c.priority || 'normal';
    var mine = c.state === 'assigned' && c.agent === state.me.agent;
    var sup = state.me.role === 'supervisor';
    $('conv-take').hidden = c.state !== 'queued';
    $('conv-close').hidden = !(mine || sup) || c.state === 'closed';
    $('conv-priority').disabled = !(mine || sup);
    /* An agent hands on its own conversation; a supervisor also gives a waiting one to someone. */
    $('conv-transfer').hidden = !(mine || sup) || !(c.state === 'assigned' || (sup && c.state === 'queued'));
    $('reply-form').hidden = !(mine || sup);
    var ol = $('transcript');
    var atBottom = ol.scrollTop + ol.clientHeight >= ol.scrollHeight - 20;
    ol.textContent = '';
    (c.messages || []).forEach(function (it) { ol.appendChild(renderItem(c, it)); });
    if (atBottom || state.justOpened) ol.scrollTop = ol.scrollHeight;
    state.justOpened = false;
  }

  function loadConv() {
    if (!state.open) return Promise.resolve();
    var id = state.open, seq = ++state.convSeq;
    return api('GET', 'conversations/' + encodeURIComponent(id)).then(function (c) {
      if (state.open === id && seq === state.convSeq) renderConv(c);
    }).catch(function (err) {
      if (err.status === 404 && state.open === id && seq === state.convSeq) closeView();
    });
  }

  function closeView() {
    state.open = null;
    $('conv').hidden = true;
    $('empty').hidden = false;
  }

  function openConv(id) {
    if (state.open) state.drafts[state.open] = $('reply').value;
    state.open = id;
    state.justOpened = true;
    $('reply').value = state.drafts[id] || '';
    document.querySelectorAll('#list li').forEach(function (li) {
      li.classList.toggle('sel', li.getAttribute('data-id') === id);
    });
    loadConv();
  }

  function act(action, body) {
    if (!state.open) return;
    api('POST', 'conversations/' + encodeURIComponent(state.open) + '/' + action, body || {})
      .then(function () { refresh(); })
      .catch(function () { refresh(); });
  }

  $('conv-take').addEventListener('click', function () { act('take'); });
  $('conv-close').addEventListener('click', function () { act('close'); });
  $('conv-priority').addEventListener('change', function () { act('priority', { priority: $('conv-priority').value }); });
  $('conv-transfer').addEventListener('change', function () {
    var to = $('conv-transfer').value;
    $('conv-transfer').value = '';
    if (to) act('transfer', { agent: to });
  });

  function send() {
    var text = $('reply').value;
    var canned = $('canned').value;
    if (!state.open || (!text.trim() && !canned)) return;
    var c = state.convs[state.open] || {};
    var body = canned ? { canned: canned, customer_name: c.name || '' } : { text: text };
    var id = state.open;
    api('POST', 'conversations/' + encodeURIComponent(id) + '/reply', body).then(function () {
      if (!canned) { $('reply').value = ''; state.drafts[id] = ''; }
      $('canned').value = '';
      loadConv();
    }).catch(function () {});
  }

  $('reply-form').addEventListener('submit', function (ev) { ev.preventDefault(); send(); });
  $('reply').addEventListener('keydown', function (ev) {
    if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) { ev.preventDefault(); send(); }
  });
  $('reply').addEventListener('input', function () { if (state.open) state.drafts[state.open] = $('reply').value; });

  /* ---- presence, agents, canned ---- */

  $('presence').addEventListener('change', function () {
    api('POST', 'presence', { presence: $('presence').value }).then(refresh).catch(function () {});
  });

  function fillCanned(list) {
    var s = $('canned');
    s.textContent = '';
    var first = el('option', null, t('canned'));
    first.value = '';
    s.appendChild(first);
    (list || []).forEach(function (c) {
      var o = el('option', null, c.name);
      o.value = c.name;
      o.title = c.text;
      s.appendChild(o);
    });
    s.hidden = !(list && list.length);
  }

  function fillAgents() {
    return api('GET', 'agents').then(function (d) {
      var s = $('conv-transfer');
      s.textContent = '';
      var first = el('option', null, t('transfer'));
      first.value = '';
      s.appendChild(first);
      (d.agents || []).forEach(function (a) {
        if (a.id === state.me.agent) return;
        var o = el('option', null, (a.name || a.id) + ' (' + t(a.presence || 'offline') + ')');
        o.value = a.id;
        s.appendChild(o);
      });
    }).catch(function () {});
  }

  /* ---- live ---- */

  /* Several events in a burst make one refresh. */
  function refresh() {
    if (state.refreshTimer) return;
    state.refreshTimer = setTimeout(function () {
      state.refreshTimer = null;
      loadList();
      loadCounts();
      loadConv();
    }, 30);
  }

  var KINDS = ['message', 'edit', 'callback', 'reaction', 'receipt', 'membership', 'assigned',
    'transferred', 'queued', 'closed', 'priority', 'reply', 'status', 'queue'];

  function connect() {
    if (state.stream) state.stream.close();
    var es = new EventSource('/console/api/stream?from=now');
    state.stream = es;
    es.onopen = function () { $('live').textContent = t('live'); $('live').classList.add('on'); refresh(); };
    es.onerror = function () {
      $('live').textContent = t('offline_stream');
      $('live').classList.remove('on');
      /* A closed stream may mean the session ended: ask once, the answer decides. */
      api('GET', 'me').catch(function () {});
    };
    KINDS.forEach(function (k) {
      es.addEventListener(k, function (ev) {
        var d = null;
        try { d = JSON.parse(ev.data); } catch (e) { d = null; }
        if (k === 'status' && d && d.conversation === state.open) {
          var tick = document.querySelector('#transcript .tick[data-id="' + CSS.escape(d.id || '') + '"]');
          if (tick) {
            tick.className = 'tick ' + d.status;
            tick.setAttribute('data-status', d.status);
            tick.textContent = t(d.status);
          }
        }
        refresh();
      });
    });
  }

  /* ---- start ---- */

  function start() {
    api('GET', 'me').then(function (me) {
      state.me = me;
      $('signin').hidden = true;
      $('app').hidden = false;
      $('me').textContent = (me.name || me.agent) + (me.role === 'supervisor' ? ' · supervisor' : '');
      $('presence').value = me.presence || 'offline';
      $('view-all').hidden = me.role !== 'supervisor';
      $('team-open').hidden = me.role !== 'supervisor';
      fillCanned(me.canned);
      fillAgents();
      loadList();
      loadCounts();
      connect();
    }).catch(function () {});
  }

  translatePage();
  if (/^#invite=/.test(location.hash)) showSignin();
  else start();
  /* Waiting times move on their own: re-drawn from what the page has, without a request. */
  setInterval(function () {
    document.querySelectorAll('#list li[data-id]').forEach(function (li) {
      var c = state.convs[li.getAttribute('data-id')];
      var meta = li.querySelector('.meta');
      if (!c || !meta) return;
      var since = waitingSince(c);
      meta.textContent = (c.platform || '') + ' · ' + (c.account || '') + ' · ' + t(c.priority || 'normal') +
        (since ? ' · ' + t('waiting') + ' ' + ago(since) : '');
    });
  }, 15000);
})();
