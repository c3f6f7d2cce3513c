'use strict';
// ali-ons producer for the failover test: a paced, numbered stream until SIGTERM.
//
//   node failover_producer.js --namesrv 127.0.0.1:9876 --topic T --prefix ons \
//        --interval 50 --poll-name-server-interval 1000
//
// Message i has body and key "<prefix>-<i>" (unique per run). One JSON line per send:
// "sent" (i, value, status, broker, queue, offset, start, end: wall-clock ms) or "send_error"
// (i, value, start, end, the error). Sends are paced --interval ms apart (end of one to start
// of the next), whatever their outcome.
// Pausing: while the file --pause-file exists the script sends nothing; it prints "paused" (i of
// the next message) once the send in flight, if any, has finished, and "resumed" when the file is
// gone. SIGTERM: "done" after the send in flight, exit 0. --deadline: "deadline", exit 3.
//
// ali-ons options used: pollNameServerInteval (sic: the client's spelling; default 30000 ms),
// the period of its route refresh from the name server; heartbeatBrokerInterval.

const fs = require('fs');
const { Producer, Message } = require('ali-ons');
const { parseArgs, emit, describeError, makeLogger, httpclient, exit } = require('./common');

function sleep(ms) {
  return new Promise(resolve => setTimeout(resolve, ms));
}

async function main() {
  const args = parseArgs(process.argv.slice(2), {
    namesrv: null,
    topic: null,
    group: 'actormq_interop_ons_failover_producer',
    prefix: 'ons',
    interval: 50,
    sendTimeout: 3000,
    pollNameServerInterval: 30000,
    heartbeatBrokerInterval: 30000,
    pauseFile: '',
    deadline: 120,
  });
  setTimeout(() => {
    emit('deadline', { seconds: args.deadline });
    exit(3);
  }, args.deadline * 1000).unref();
  let stopping = false;
  process.on('SIGTERM', () => { stopping = true; });
  process.on('SIGINT', () => { stopping = true; });

  const producer = new Producer({
    httpclient,
    nameSrv: args.namesrv.split(';'),
    producerGroup: args.group,
    logger: makeLogger(),
    sendMsgTimeout: args.sendTimeout,
    pollNameServerInteval: args.pollNameServerInterval,
    heartbeatBrokerInterval: args.heartbeatBrokerInterval,
  });
  producer.on('error', err => emit('client_error', describeError(err)));
  await producer.ready();
  emit('started', {
    clientId: producer.clientId,
    group: args.group,
    pollNameServerInteval: args.pollNameServerInterval,
    sendMsgTimeout: args.sendTimeout,
  });

  let ok = 0;
  let failed = 0;
  let paused = false;
  for (let i = 0; !stopping; i++) {
    while (args.pauseFile && fs.existsSync(args.pauseFile) && !stopping) {
      if (!paused) {
        paused = true;
        emit('paused', { next: i, at: Date.now() });
      }
      await sleep(5);
    }
    if (paused) {
      paused = false;
      emit('resumed', { next: i, at: Date.now() });
    }
    if (stopping) {
      break;
    }
    const value = `${args.prefix}-${i}`;
    const msg = new Message(args.topic, 'TagA', value);
    msg.keys = [ value ];
    const start = Date.now();
    try {
      const result = await producer.send(msg);
      ok++;
      emit('sent', {
        i,
        value,
        status: result.sendStatus,
        broker: result.messageQueue.brokerName,
        queue: Number(result.messageQueue.queueId),
        offset: result.queueOffset,
        msgId: result.msgId,
        start,
        end: Date.now(),
      });
    } catch (err) {
      failed++;
      emit('send_error', Object.assign({ i, value, start, end: Date.now() }, describeError(err)));
    }
    await sleep(args.interval);
  }
  emit('done', { ok, failed });
  try {
    await producer.close();
  } catch (err) {
    emit('client_error', describeError(err));
  }
  return 0;
}

main().then(
  code => exit(code),
  err => {
    emit('fatal', describeError(err));
    process.stderr.write(`${err && err.stack}\n`);
    exit(2);
  }
);
