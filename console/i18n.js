/* The console's own words, English and Ukrainian, picked from the browser's languages. */
'use strict';
window.DB_STRINGS = {
  en: {
    title: 'deskbridge', agent_id: 'Agent id', secret: 'Secret', sign_in: 'Sign in',
    sign_out: 'Sign out', choose_secret: 'Choose your sign-in secret (at least 10 characters).',
    save_and_sign_in: 'Save and sign in', wrong_secret: 'Unknown agent or wrong secret.',
    too_many: 'Too many failed attempts: wait and try again.', invalid_link: 'This link is used or expired.',
    online: 'online', away: 'away', offline: 'offline', mine: 'Mine', queue: 'Queue', all: 'All',
    results: 'Results', search: 'Search', low: 'low', normal: 'normal', high: 'high', urgent: 'urgent',
    take: 'Take', close: 'Close', send: 'Send', reply_hint: 'Reply (Enter sends, Shift+Enter: new line)',
    pick: 'Pick a conversation.', canned: 'Canned response…', transfer: 'Transfer to…',
    waiting: 'waiting', automatic: 'automatic answer', queued: 'queued', sent: 'sent',
    delivered: 'delivered', read: 'read', failed: 'failed', live: 'live', offline_stream: 'offline',
    image: 'image', document: 'document', voice: 'voice message', audio: 'audio', video: 'video',
    sticker: 'sticker', location: 'location', open_file: 'open', no_text: '(no text)',
    nothing: 'Nothing here.', error: 'Something went wrong; try again.', state_closed: 'closed',
    reply_api: '(no text)', open: 'open', assigned: 'assigned',
    unit_s: 's', unit_min: 'min', unit_h: 'h',
    team: 'Team', team_title: 'Team figures', refresh: 'Refresh', back: 'Back to the inbox',
    team_windows: 'Each figure for the last hour and the last day.', agent: 'Agent',
    presence: 'Presence', account: 'Account', handled: 'Conversations handled',
    frt_median: 'First response, median', frt_p90: 'First response, 90th percentile',
    csat: 'Satisfaction (answers)', hour: 'hour', day: 'day', updated: 'updated',
    csat_overall: 'Satisfaction, all accounts', under_1s: 'under 1'
  },
  uk: {
    title: 'deskbridge', agent_id: 'Ідентифікатор агента', secret: 'Секрет', sign_in: 'Увійти',
    sign_out: 'Вийти', choose_secret: 'Оберіть секрет для входу (щонайменше 10 символів).',
    save_and_sign_in: 'Зберегти й увійти', wrong_secret: 'Невідомий агент або неправильний секрет.',
    too_many: 'Забагато невдалих спроб: зачекайте й спробуйте знову.', invalid_link: 'Це посилання вже використане або застаріле.',
    online: 'на зв’язку', away: 'відійшов', offline: 'не на зв’язку', mine: 'Мої', queue: 'Черга', all: 'Усі',
    results: 'Знайдене', search: 'Пошук', low: 'низький', normal: 'звичайний', high: 'високий', urgent: 'терміново',
    take: 'Взяти', close: 'Закрити', send: 'Надіслати', reply_hint: 'Відповідь (Enter надсилає, Shift+Enter: новий рядок)',
    pick: 'Оберіть розмову.', canned: 'Шаблон відповіді…', transfer: 'Передати…',
    waiting: 'чекає', automatic: 'автовідповідь', queued: 'у черзі', sent: 'надіслано',
    delivered: 'доставлено', read: 'прочитано', failed: 'не доставлено', live: 'наживо', offline_stream: 'немає зв’язку',
    image: 'зображення', document: 'документ', voice: 'голосове', audio: 'аудіо', video: 'відео',
    sticker: 'стікер', location: 'місце', open_file: 'відкрити', no_text: '(без тексту)',
    nothing: 'Тут нічого немає.', error: 'Щось пішло не так; спробуйте ще раз.', state_closed: 'закрита',
    reply_api: '(без тексту)', open: 'відкриті', assigned: 'призначена',
    unit_s: 'с', unit_min: 'хв', unit_h: 'год',
    team: 'Команда', team_title: 'Показники команди', refresh: 'Оновити', back: 'До розмов',
    team_windows: 'Кожен показник за останню годину та за останню добу.', agent: 'Агент',
    presence: 'Статус', account: 'Обліковий запис', handled: 'Опрацьовано розмов',
    frt_median: 'Перша відповідь, медіана', frt_p90: 'Перша відповідь, 90-й перцентиль',
    csat: 'Задоволеність (відповідей)', hour: 'година', day: 'доба', updated: 'оновлено',
    csat_overall: 'Задоволеність, усі облікові записи', under_1s: 'менше 1'
  }
};
window.dbLang = (function () {
  var langs = navigator.languages || [navigator.language || 'en'];
  for (var i = 0; i < langs.length; i++) {
    var l = String(langs[i]).toLowerCase().split('-')[0];
    if (window.DB_STRINGS[l]) return l;
  }
  return 'en';
})();
window.t = function (key) {
  var s = window.DB_STRINGS[window.dbLang];
  return (s && s[key]) || window.DB_STRINGS.en[key] || key;
};
