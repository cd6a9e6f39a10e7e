// The live viewfinder (getUserMedia, where the browser allows it): the back camera at full resolution, a frame
// guide, and the quality gate's advice on the live picture before the officer takes the photo.
//
//   const cam = await Viewfinder.start(videoElement);   cam.advice(site) -> ["more light: ..."]
//   const blob = await cam.capture();   cam.stop();
import { measure } from "./quality.js";

export class Viewfinder {
  static available() { return !!(navigator.mediaDevices && navigator.mediaDevices.getUserMedia); }

  static async start(video) {
    const stream = await navigator.mediaDevices.getUserMedia({
      video: { facingMode: { ideal: "environment" }, width: { ideal: 4032 }, height: { ideal: 3024 } }, audio: false });
    video.srcObject = stream;
    await video.play();
    return new Viewfinder(video, stream);
  }

  constructor(video, stream) { this.video = video; this.stream = stream; this.probe = new OffscreenCanvas(160, 120); }

  // The quality gate on a small copy of the live picture: light and focus. The thresholds are the face's, measured
  // here on the whole frame at 160 px, so it warns early and never blocks: the inspection judges the real face.
  advice(site) {
    const v = this.video;
    if (!v.videoWidth) return [];
    const w = 160, h = Math.max(1, Math.round(160 * v.videoHeight / v.videoWidth));
    this.probe.width = w; this.probe.height = h;
    const ctx = this.probe.getContext("2d", { willReadFrequently: true });
    ctx.drawImage(v, 0, 0, w, h);
    const d = ctx.getImageData(0, 0, w, h).data, x = new Uint8Array(w * h * 3);
    for (let i = 0; i < w * h; i++) { x[3 * i] = d[4 * i]; x[3 * i + 1] = d[4 * i + 1]; x[3 * i + 2] = d[4 * i + 2]; }
    const q = measure(x, w, h), lim = { ...site.constants.quality, ...(site.model.quality || {}) }, a = site.advice.quality;
    const out = [];
    if (q.brightness < lim.min_brightness) out.push(a.dark);
    else if (q.brightness > lim.max_brightness || q.clipped > lim.max_clipped) out.push(a.bright);
    else if (q.sharpness < lim.min_sharpness) out.push(a.blur);
    return out;
  }

  // The full-resolution frame as a JPEG, the way the camera input would hand it over.
  async capture() {
    const v = this.video, c = new OffscreenCanvas(v.videoWidth, v.videoHeight);
    c.getContext("2d").drawImage(v, 0, 0);
    return c.convertToBlob({ type: "image/jpeg", quality: 0.92 });
  }

  stop() { for (const t of this.stream.getTracks()) t.stop(); this.video.srcObject = null; }
}
