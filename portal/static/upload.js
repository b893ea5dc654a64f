// Only a progress bar: without this script the form posts as it is and the server answers the same way.
(function () {
  var form = document.getElementById("upload-form");
  if (!form || !window.FormData || !window.XMLHttpRequest) { return; }
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var bar = document.getElementById("upload-progress");
    var request = new XMLHttpRequest();
    request.open("POST", form.action);
    request.upload.onprogress = function (e) {
      if (e.lengthComputable) { bar.hidden = false; bar.value = Math.round(100 * e.loaded / e.total); }
    };
    request.onload = function () {
      // Received: the server redirected to the country's page, which is opened as a form post would.
      if (request.status === 200 && request.responseURL && request.responseURL.indexOf("/upload") === -1) {
        window.location.assign(request.responseURL);
        return;
      }
      // Refused: the server's page says why.
      document.open(); document.write(request.responseText); document.close();
    };
    request.send(new FormData(form));
  });
})();
