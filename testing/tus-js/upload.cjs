#!/usr/bin/env node
// Upload one file with tus-js-client and print one JSON line: {"ok": true, "url": "..."} or
// {"ok": false, "error": "...", "status": 460}. The test suite runs it against the service:
//
//   node upload.cjs --endpoint http://127.0.0.1:8080/uploads/ --file x.bin [--name x.bin]
//        [--chunk-size N] [--parallel N] [--deferred] [--stream] [--data-during-creation]
//        [--header 'Authorization: Bearer …']
'use strict'

const fs = require('fs')
const { PassThrough } = require('stream')
const { Upload } = require('tus-js-client')

function parseArguments (argv) {
  const options = { headers: {} }
  for (let i = 2; i < argv.length; i++) {
    const next = () => argv[++i]
    switch (argv[i]) {
      case '--endpoint': options.endpoint = next(); break
      case '--file': options.file = next(); break
      case '--name': options.name = next(); break
      case '--chunk-size': options.chunkSize = Number(next()); break
      case '--parallel': options.parallel = Number(next()); break
      case '--deferred': options.deferred = true; break
      case '--stream': options.stream = true; break
      case '--piped': options.piped = true; break
      case '--data-during-creation': options.dataDuringCreation = true; break
      case '--header': {
        const [name, ...value] = next().split(':')
        options.headers[name.trim()] = value.join(':').trim()
        break
      }
      default: throw new Error(`unknown argument ${argv[i]}`)
    }
  }
  return options
}

function print (result) {
  process.stdout.write(`${JSON.stringify(result)}\n`)
}

function main () {
  const options = parseArguments(process.argv)
  // A Buffer where the size must be known (parallel uploads), unless --stream asks for a file
  // stream: with a deferred length, tus-js-client 4.3 then declares a whole chunk for the last
  // PATCH and sends only what is left, and finishes only if the server keeps those bytes and
  // answers with a status it retries.
  let input = !options.stream && (options.deferred || options.parallel)
    ? fs.readFileSync(options.file)
    : fs.createReadStream(options.file)
  if (options.piped) input = input.pipe(new PassThrough())
  let finished = false
  // If tus-js-client drops a promise, Node would exit 0 with neither callback: say so.
  process.on('beforeExit', () => {
    if (!finished) {
      print({ ok: false, error: 'neither onSuccess nor onError was called' })
      process.exitCode = 2
    }
  })
  const upload = new Upload(input, {
    endpoint: options.endpoint,
    metadata: { filename: options.name || 'upload.bin' },
    headers: options.headers,
    chunkSize: options.chunkSize || Number.POSITIVE_INFINITY,
    parallelUploads: options.parallel || 1,
    uploadLengthDeferred: Boolean(options.deferred),
    uploadDataDuringCreation: Boolean(options.dataDuringCreation),
    retryDelays: [0, 200, 500],
    onSuccess () {
      finished = true
      print({ ok: true, url: upload.url })
    },
    onError (error) {
      finished = true
      const status = error.originalResponse ? error.originalResponse.getStatus() : null
      print({ ok: false, error: String(error.message || error), status })
      process.exitCode = 1
    }
  })
  upload.start()
}

main()
