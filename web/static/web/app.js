/* LabDropbox web app: what the buttons and forms of a page do, through the JSON API, under the
   member's session and its CSRF token. Every action is a plain <form> or <button>, so it works
   from the keyboard; nothing here runs inline (the Content-Security-Policy forbids it). */
'use strict'

const LabDropbox = (() => {
  const csrf = document.querySelector('meta[name="csrf-token"]').content
  const status = document.getElementById('status')

  function say (message, isError) {
    status.textContent = message
    status.classList.toggle('error', Boolean(isError))
    status.setAttribute('role', isError ? 'alert' : 'status')
  }

  // A call to the API: resolves to {ok, status, data}; never rejects (a network failure is
  // status 0 with a message).
  async function api (method, url, body) {
    const headers = { 'X-CSRFToken': csrf, Accept: 'application/json' }
    if (body !== undefined) headers['Content-Type'] = 'application/json'
    try {
      const response = await fetch(url, {
        method,
        headers,
        credentials: 'same-origin',
        body: body === undefined ? undefined : JSON.stringify(body)
      })
      if (response.status === 401) { // the session ended: sign in again, and come back here
        location.assign('/app/sign-in?next=' + encodeURIComponent(location.pathname + location.search))
      }
      const text = await response.text()
      let data = {}
      try { data = text ? JSON.parse(text) : {} } catch (error) { data = { detail: text } }
      return { ok: response.ok, status: response.status, data }
    } catch (error) {
      return { ok: false, status: 0, data: { detail: 'the server could not be reached: ' + error.message } }
    }
  }

  function join (folder, name) {
    return (folder === '/' ? '' : folder.replace(/\/+$/, '')) + '/' + name
  }

  function failed (answer) {
    say(answer.data.detail || ('the server answered ' + answer.status), true)
  }

  // <form data-action="…">: what each kind of form sends, and what follows a success.
  const forms = {
    'new-folder': async (form) => {
      const folder = document.querySelector('[data-folder-path]').dataset.folderPath
      const answer = await api('POST', '/folders', { path: join(folder, form.elements.name.value) })
      if (!answer.ok) return failed(answer)
      location.reload()
    },
    move: async (form) => {
      const path = form.dataset.folder !== undefined
        ? join(form.dataset.folder, form.elements.name.value)
        : join(form.elements.folder.value, form.dataset.name)
      const answer = await api('POST', form.dataset.url, { path })
      if (!answer.ok) return failed(answer)
      location.reload()
    },
    copy: async (form) => {
      const answer = await api('POST', form.dataset.url, { path: form.elements.path.value })
      if (!answer.ok) return failed(answer)
      location.assign('/app/files/' + answer.data.file_id)
    },
    share: async (form) => {
      const number = (field) => field.value === '' ? null : Number(field.value)
      const answer = await api('POST', form.dataset.url, {
        expires_in_seconds: number(form.elements.expires_in_seconds),
        max_downloads: number(form.elements.max_downloads)
      })
      if (!answer.ok) return failed(answer)
      const box = document.getElementById('new-link')
      const field = document.getElementById('new-link-url')
      field.value = answer.data.url
      box.hidden = false
      field.focus()
      field.select()
      say('Share link created: copy it now, it is shown only once.')
    }
  }

  // <button data-action="…" data-url="…">
  const buttons = {
    trash: async (button) => {
      const answer = await api('DELETE', button.dataset.url)
      if (!answer.ok) return failed(answer)
      if (button.dataset.then) return location.assign(button.dataset.then)
      button.closest('tr').remove()
      say('Moved to the trash: restore it from the Trash page.')
    },
    delete: async (button) => {
      if (button.dataset.confirm && !window.confirm(button.dataset.confirm)) return
      const answer = await api('DELETE', button.dataset.url)
      if (!answer.ok) return failed(answer)
      location.reload()
    },
    post: async (button) => {
      const answer = await api('POST', button.dataset.url)
      if (!answer.ok) return failed(answer)
      location.reload()
    },
    'copy-link': async () => {
      const field = document.getElementById('new-link-url')
      try {
        await navigator.clipboard.writeText(field.value)
      } catch (error) { // no clipboard permission: the old way, from the selected field
        field.select()
        if (!document.execCommand('copy')) return say('Copying failed: select the link and copy it.', true)
      }
      say('Link copied to the clipboard.')
    }
  }

  document.addEventListener('submit', (event) => {
    const form = event.target
    const action = forms[form.dataset.action]
    if (!action) return
    event.preventDefault()
    action(form)
  })
  document.addEventListener('click', (event) => {
    const button = event.target.closest('button[data-action]')
    const action = button && buttons[button.dataset.action]
    if (!action) return
    event.preventDefault()
    action(button)
  })

  // Dragging a row onto a folder (a row or a breadcrumb) moves it there.
  const DRAGGED = 'application/x-labdropbox-entry'
  document.addEventListener('dragstart', (event) => {
    const row = event.target.closest && event.target.closest('tr[data-id]')
    if (!row) return
    event.dataTransfer.setData(DRAGGED, JSON.stringify(row.dataset))
    event.dataTransfer.effectAllowed = 'move'
  })
  function target (event) {
    const found = event.target.closest && event.target.closest('[data-drop-path]')
    return found && event.dataTransfer.types.includes(DRAGGED) ? found : null
  }
  document.addEventListener('dragover', (event) => {
    const found = target(event)
    if (!found) return
    event.preventDefault()
    found.classList.add('drop-target')
  })
  document.addEventListener('dragleave', (event) => {
    const found = target(event)
    if (found) found.classList.remove('drop-target')
  })
  document.addEventListener('drop', async (event) => {
    const found = target(event)
    if (!found) return
    event.preventDefault()
    event.stopPropagation()
    found.classList.remove('drop-target')
    const entry = JSON.parse(event.dataTransfer.getData(DRAGGED))
    if (found.dataset.id === entry.id) return
    const url = (entry.kind === 'folder' ? '/folders/' : '/files/') + entry.id + '/move'
    const answer = await api('POST', url, { path: join(found.dataset.dropPath, entry.name) })
    if (!answer.ok) return failed(answer)
    location.reload()
  })

  return { api, say, join, csrf }
})()
