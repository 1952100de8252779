// What the player shows, for the server (`viewer.view`, or `POST
// {resource}/view` over WHEP): the rendered picture in device pixels and
// whether the page is visible. The server caps an automatic layer to the
// smallest one covering the picture and pauses video once the page has
// been hidden for 5 s (audio continues); picture-in-picture counts as
// visible, since the picture still shows.
//
// Reports are sent only when they change: the first change at once, then
// at most every REPORT_MS while the player is being resized (a resize drag
// fires many events).

const REPORT_MS = 250;

/// The picture inside `video` (object-fit: contain) in device pixels.
function picture(video) {
  const box = video.getBoundingClientRect();
  const dpr = window.devicePixelRatio || 1;
  let { width, height } = box;
  const aspect = video.videoWidth && video.videoHeight ? video.videoWidth / video.videoHeight : 0;
  if (aspect && width && height) {
    if (width / height > aspect) width = height * aspect;
    else height = width / aspect;
  }
  return { width: Math.round(width * dpr), height: Math.round(height * dpr) };
}

/// Watches `video` and calls `send(view)` with `{width, height, visible}`
/// on every change; `resend()` repeats the last one (a new session).
export function watchViewport(video, send) {
  let last = null;
  let timer = null;
  let sentAt = 0;

  function current() {
    const visible = document.visibilityState === 'visible' || document.pictureInPictureElement === video;
    return { ...picture(video), visible };
  }

  function report() {
    timer = null;
    const view = current();
    if (last && last.width === view.width && last.height === view.height && last.visible === view.visible) return;
    last = view;
    sentAt = performance.now();
    send(view);
  }

  function soon() {
    if (timer) return;
    const wait = sentAt + REPORT_MS - performance.now();
    if (wait <= 0) report();
    else timer = setTimeout(report, wait);
  }

  new ResizeObserver(soon).observe(video);
  video.addEventListener('resize', soon); // the picture's aspect became known
  video.addEventListener('enterpictureinpicture', report);
  video.addEventListener('leavepictureinpicture', report);
  // Hiding is reported at once: the server's grace starts then.
  document.addEventListener('visibilitychange', report);
  // A zoom or a move to another screen changes devicePixelRatio.
  const watchRatio = () => {
    matchMedia(`(resolution: ${window.devicePixelRatio}dppx)`).addEventListener('change', () => {
      soon();
      watchRatio();
    }, { once: true });
  };
  watchRatio();

  return {
    resend() {
      last = current();
      send(last);
    },
    get view() { return last || current(); },
  };
}
