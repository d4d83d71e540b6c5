// Starts the telegram-test-api Bot API emulator: node telegram_emulator.js PORT
// Prints "listening" once it accepts requests.
const TelegramServer = require('telegram-test-api');

const port = Number(process.argv[2]);
const server = new TelegramServer({ port, host: '127.0.0.1', storeTimeout: 120 });
server.start().then(() => console.log('listening'));
for (const s of ['SIGINT', 'SIGTERM']) process.on(s, () => server.stop().then(() => process.exit(0)));
// The emulator does not await its own webhook deliveries; a refused one would otherwise end
// the process.
process.on('unhandledRejection', (e) => console.error('emulator: delivery failed:', e && e.message));
