/* Uploads into the folder on screen, through the service's tus endpoint (/uploads/) with the
   vendored tus-js-client: files from the picker, a whole folder (webkitdirectory), or anything
   dropped on the page, several at a time, each with its progress, pause and resume. An upload
   that breaks (the network drops, the tab is reloaded) goes on from the server's offset: the
   client keeps each upload's URL in localStorage, under a fingerprint of its path and file, so
   choosing the same file again resumes it. */
'use strict'

;(() => {
  const { api, say, join, csrf } = LabDropbox
  const toolbar = document.querySelector('[data-folder-path]')
  if (!toolbar) return
  const folder = toolbar.dataset.folderPath
  const CHUNK = 8 * 1024 * 1024 // one PATCH each: small enough to lose little when one breaks
  const AT_ONCE = 3
  const USER = document.body.dataset.user
  const queue = []
  const all = []
  let running = 0
  let stored = 0
  let walking = 0 // dropped folders still being read: the queue is not done while one is

  if (!window.tus || !tus.isSupported) {
    document.getElementById('drop').textContent = 'This browser cannot upload here (no File API).'
    return
  }

  const fingerprint = (path, file) =>
    ['labdropbox', USER, path, file.size, file.lastModified].join('|')

  function errorText (error) {
    const response = error.originalResponse
    if (!response) return 'the upload failed: ' + error.message
    let detail = ''
    try { detail = JSON.parse(response.getBody()).detail || '' } catch (ignored) { detail = response.getBody() || '' }
    const status = response.getStatus()
    if (status === 401) return 'Signed out: sign in again, then choose the file again to go on.'
    if (status === 507) return 'Not enough space: this file would take you over your quota. ' + detail
    if (status === 413) return 'Too large: ' + detail
    if (status === 409) return 'Name conflict: ' + detail
    if (status === 429) return 'Too many unfinished uploads: ' + detail
    return detail || ('the server answered ' + status)
  }

  // Retry what a retry can mend: a network failure, a busy lock, an interrupted body, the
  // server's own 5xx — never a refusal (quota, size, name), which would only fail again.
  function retryable (error) {
    const response = error.originalResponse
    if (!response) return true
    const status = response.getStatus()
    if (status === 423) return true
    if (status === 409) {
      try { return ['upload_interrupted', 'offset_mismatch'].includes(JSON.parse(response.getBody()).error) } catch (ignored) { return false }
    }
    return status >= 500 && status !== 501 && status !== 507
  }

  function add (file, relativePath) {
    const path = join(folder, relativePath)
    const item = { file, path, sent: 0, state: 'waiting' }
    item.row = document.createElement('li')
    item.row.dataset.path = path
    const label = document.createElement('span')
    label.className = 'upload-name'
    label.textContent = relativePath
    item.bar = document.createElement('progress')
    item.bar.max = Math.max(file.size, 1)
    item.bar.value = 0
    item.bar.setAttribute('aria-label', 'Upload of ' + relativePath)
    item.text = document.createElement('span')
    item.text.className = 'upload-state'
    item.text.textContent = 'waiting'
    item.pause = document.createElement('button')
    item.pause.type = 'button'
    item.pause.textContent = 'Pause'
    item.pause.setAttribute('aria-label', 'Pause ' + relativePath)
    item.pause.addEventListener('click', () => toggle(item))
    item.row.append(label, item.bar, item.text, item.pause)
    document.getElementById('upload-list').append(item.row)
    document.getElementById('uploads').hidden = false
    all.push(item)
    queue.push(item)
    overall()
    next()
  }

  function overall () {
    const counted = all.filter((item) => item.state !== 'failed')
    const total = counted.reduce((sum, item) => sum + item.file.size, 0)
    const sent = counted.reduce((sum, item) => sum + item.sent, 0)
    const bar = document.getElementById('overall')
    bar.max = Math.max(total, 1)
    bar.value = sent
    const done = all.filter((item) => item.state === 'done').length
    document.getElementById('overall-text').textContent = `${done} of ${all.length} files done`
  }

  function show (item, state, text) {
    item.state = state
    item.row.dataset.state = state
    item.text.textContent = text || state
    item.pause.hidden = !['uploading', 'paused'].includes(state)
    item.pause.textContent = state === 'paused' ? 'Resume' : 'Pause'
    item.pause.setAttribute('aria-label', item.pause.textContent + ' ' + item.path)
  }

  function next () {
    while (running < AT_ONCE && queue.length) start(queue.shift())
    if (running === 0 && queue.length === 0 && walking === 0) finished()
  }

  function start (item) {
    running += 1
    if (item.upload) { // resumed after a pause: it knows its URL and asks the server's offset
      show(item, 'uploading', 'resuming')
      item.upload.start()
      return
    }
    show(item, 'uploading', 'starting')
    item.pause.disabled = true // until the upload exists on the server: see onUploadUrlAvailable
    item.upload = new tus.Upload(item.file, {
      endpoint: '/uploads/',
      chunkSize: CHUNK,
      retryDelays: [0, 1000, 3000, 5000, 10000, 20000],
      metadata: { path: item.path, filename: item.file.name },
      headers: { 'X-CSRFToken': csrf },
      fingerprint: (file) => Promise.resolve(fingerprint(item.path, file)),
      removeFingerprintOnSuccess: true,
      onShouldRetry: retryable,
      onUploadUrlAvailable () { item.pause.disabled = false },
      onProgress (sent) {
        item.sent = sent
        item.bar.value = sent
        if (item.state === 'uploading') item.text.textContent = Math.floor(100 * sent / Math.max(item.file.size, 1)) + '%'
        overall()
      },
      onSuccess () {
        item.sent = item.file.size
        item.bar.value = item.bar.max
        stored += 1
        show(item, 'done', 'done')
        settle(item)
      },
      onError (error) {
        show(item, 'failed', errorText(error))
        item.row.classList.add('error')
        say(item.path + ': ' + errorText(error), true)
        settle(item)
      }
    })
    item.upload.findPreviousUploads().then((previous) => {
      if (previous.length) item.upload.resumeFromPreviousUpload(previous[0])
      item.upload.start()
    }, () => item.upload.start()) // no localStorage (a private window): a fresh upload
  }

  function settle (item) {
    running -= 1
    overall()
    next()
  }

  // A paused upload gives its place to the next one; resumed, it waits for a place again.
  function toggle (item) {
    if (item.state === 'uploading') {
      item.upload.abort() // keeps the upload on the server: it goes on from its offset
      show(item, 'paused', 'paused')
      running -= 1
      next()
    } else if (item.state === 'paused') {
      show(item, 'waiting', 'waiting')
      queue.unshift(item)
      next()
    }
  }

  // When the queue is empty: the listing and the quota bar as they are now, in place (the
  // upload panel, with any failure, stays).
  async function finished () {
    if (stored === 0) return
    stored = 0
    const response = await fetch(location.href, { credentials: 'same-origin' })
    if (!response.ok) return
    const fresh = new DOMParser().parseFromString(await response.text(), 'text/html')
    for (const selector of ['#listing', '.quota']) {
      const now = document.querySelector(selector)
      const then = fresh.querySelector(selector)
      if (now && then) now.replaceWith(then)
    }
    const failures = all.filter((item) => item.state === 'failed').length
    const paused = all.filter((item) => item.state === 'paused').length
    if (failures) say(`Uploads finished; ${failures} failed.`, true)
    else say(paused ? `Uploads finished but ${paused} paused.` : 'Uploads finished.')
    showUnfinished()
  }

  // Picked files: from a folder picker each has its path inside the folder.
  function picked (input) {
    for (const file of input.files) add(file, file.webkitRelativePath || file.name)
    input.value = ''
  }
  const pickFiles = document.getElementById('pick-files')
  const pickFolder = document.getElementById('pick-folder')
  document.getElementById('upload-files').addEventListener('click', () => pickFiles.click())
  document.getElementById('upload-folder').addEventListener('click', () => pickFolder.click())
  pickFiles.addEventListener('change', () => picked(pickFiles))
  pickFolder.addEventListener('change', () => picked(pickFolder))

  // Dropped files and folders (a folder's tree read entry by entry; its empty folders made).
  async function walk (entry) {
    if (entry.isFile) {
      const file = await new Promise((resolve, reject) => entry.file(resolve, reject))
      add(file, entry.fullPath.replace(/^\/+/, ''))
      return
    }
    const reader = entry.createReader()
    let count = 0
    for (;;) {
      const batch = await new Promise((resolve, reject) => reader.readEntries(resolve, reject))
      if (!batch.length) break
      count += batch.length
      for (const child of batch) await walk(child)
    }
    if (count === 0) {
      const answer = await api('POST', '/folders', { path: join(folder, entry.fullPath.replace(/^\/+/, '')) })
      if (!answer.ok && answer.status !== 409) say(answer.data.detail, true)
    }
  }
  const page = document.getElementById('main')
  const carriesFiles = (event) => event.dataTransfer && event.dataTransfer.types.includes('Files')
  page.addEventListener('dragover', (event) => {
    if (!carriesFiles(event)) return
    event.preventDefault()
    document.getElementById('drop').classList.add('drop-target')
  })
  page.addEventListener('dragleave', () => document.getElementById('drop').classList.remove('drop-target'))
  page.addEventListener('drop', (event) => {
    if (!carriesFiles(event)) return
    event.preventDefault()
    document.getElementById('drop').classList.remove('drop-target')
    const entries = [...event.dataTransfer.items].map((item) => item.webkitGetAsEntry && item.webkitGetAsEntry())
    if (entries.every(Boolean)) {
      walking += 1
      entries.reduce((done, entry) => done.then(() => walk(entry)), Promise.resolve())
        .catch((error) => say('Reading the dropped folder failed: ' + error.message, true))
        .finally(() => { walking -= 1; next() })
    } else {
      for (const file of event.dataTransfer.files) add(file, file.name)
    }
  })

  // Uploads a reload (or a crash) left unfinished: listed, so the member knows to pick them
  // again; or discarded, which ends them on the server too.
  function showUnfinished () {
    try { if (!window.localStorage) return } catch (blocked) { return } // storage turned off
    const list = document.getElementById('unfinished-list')
    list.replaceChildren()
    const prefix = 'tus::' + ['labdropbox', USER, ''].join('|')
    for (let index = 0; index < localStorage.length; index++) {
      const key = localStorage.key(index)
      if (!key.startsWith(prefix)) continue
      let upload
      try { upload = JSON.parse(localStorage.getItem(key)) } catch (ignored) { continue }
      const path = upload.metadata && upload.metadata.path
      if (!path || all.some((item) => item.path === path && item.state !== 'failed')) continue
      const row = document.createElement('li')
      row.textContent = path + ' '
      const discard = document.createElement('button')
      discard.type = 'button'
      discard.textContent = 'Discard'
      discard.setAttribute('aria-label', 'Discard the unfinished upload of ' + path)
      discard.addEventListener('click', async () => {
        localStorage.removeItem(key)
        if (upload.uploadUrl) {
          await tus.Upload.terminate(upload.uploadUrl, { headers: { 'X-CSRFToken': csrf } }).catch(() => {})
        }
        showUnfinished()
      })
      row.append(discard)
      list.append(row)
    }
    document.getElementById('unfinished').hidden = list.children.length === 0
  }
  showUnfinished()
})()
