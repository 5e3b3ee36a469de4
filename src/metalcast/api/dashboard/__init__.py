"""The web dashboard, served by the API process under ``/dashboard`` (docs/dashboard.md).

Server-rendered HTML pages (:mod:`.markup` escapes every value), made live by htmx
and the node event stream; every read and action is a request to this process's own
API as the browser's caller (:mod:`.api_calls`), so the API's authentication,
policy, owner and lessee filtering, secret masking and audit apply unchanged.

Modules::

    routes      the pages, partials and the event stream route
    session     the session cookie, CSRF checks, security headers
    login       logging in (an API token in an HttpOnly cookie) and out
    table       the node table: filters, paging, rows
    actions     bulk actions on selected nodes
    node_page   one node: properties, ports, driver info, inventory, history
    deploy      the deploy form and a node's live state and progress
    enrolment   bulk enrolment from a CSV upload, all or nothing
    console_page  a node's serial console (xterm.js, ``static/console.js``)
    conductors_page  the conductors and the hardware types they run
    layout      the page frame
    markup      escaped HTML templates
    api_calls   the API as the caller of a dashboard request

The web libraries (htmx, xterm.js) come from npm (package.json, package-lock.json):
``scripts/dashboard-assets`` copies them into ``static/vendor``, which is not in the
repository.
"""
