"""What the portal says, in Spanish and in English: one entry per phrase, both languages side by side.

The receipts' own messages are already bilingual (expectations/receipts.py);
this is the portal's frame around them.
"""
from __future__ import annotations

from report.texts import Q01_STATE_WORDS

TEXTS: dict[str, tuple[str, str]] = {
    "title": ("Observatorio de Movilidad Humana", "Human Mobility Observatory"),
    "portal": ("Espacio de los países", "Country space"),
    "sign_in": ("Iniciar sesión", "Sign in"),
    "sign_out": ("Cerrar sesión", "Sign out"),
    "email": ("Correo electrónico", "E-mail"),
    "password": ("Contraseña", "Password"),
    "signed_in_as": ("Sesión de", "Signed in as"),
    "sign_in_failed": ("Correo o contraseña incorrectos, o cuenta bloqueada o desactivada. Tras 20 intentos "
                       "fallidos la cuenta se bloquea durante un tiempo; el administrador puede restablecerla.",
                       "Wrong e-mail or password, or the account is locked or disabled. After 20 failed attempts "
                       "the account is locked for a while; the administrator can reset it."),
    "session_ended": ("Su sesión terminó. Inicie sesión de nuevo.", "Your session ended. Please sign in again."),
    "language": ("Idioma", "Language"),
    "switch_language": ("English", "Español"),
    "countries": ("Países", "Countries"),
    "country": ("País", "Country"),
    "send_files": ("Enviar archivos", "Send files"),
    "send_help": ("Archivos CSV o XLSX, uno o varios, de hasta {limit}. Cada archivo recibe su propia respuesta.",
                  "CSV or XLSX files, one or several, up to {limit} each request. Each file gets its own answer."),
    "send": ("Enviar", "Send"),
    "check_first": ("Revisar sin enviar", "Check without sending"),
    "check_help": ("Revisión previa (hmo check): qué perfil se reconoce y qué respuesta tendría el archivo; "
                   "no se carga nada.",
                   "Dry run (hmo check): which layout is recognised and what answer the file would get; "
                   "nothing is loaded."),
    "submissions": ("Envíos", "Submissions"),
    "no_submissions": ("Aún no hay envíos.", "No submissions yet."),
    "file": ("Archivo", "File"),
    "status": ("Estado", "Status"),
    "received_at": ("Recibido", "Received"),
    "rows": ("Filas", "Rows"),
    "problems": ("Problemas", "Problems"),
    "receipt": ("Acuse", "Receipt"),
    "st_received": ("recibido", "received"),
    "st_validating": ("validando", "validating"),
    "st_accepted": ("aceptado", "accepted"),
    "st_rejected": ("rechazado", "rejected"),
    "st_duplicate": ("duplicado", "duplicate"),
    "uploaded": ("Archivos recibidos: {count}. La respuesta a cada uno aparecerá abajo en cuanto se valide.",
                 "Files received: {count}. The answer to each will appear below once it is validated."),
    "upload_refused": ("No se recibió nada: {reason}", "Nothing was received: {reason}"),
    "no_file": ("elija al menos un archivo", "choose at least one file"),
    "too_large": ("el envío supera {limit}", "the upload is larger than {limit}"),
    "incomplete": ("el envío se interrumpió antes de terminar; envíelo de nuevo",
                   "the upload was cut off before it ended; please send it again"),
    "too_many": ("se aceptan hasta 20 archivos por envío", "up to 20 files are taken at a time"),
    "bad_type": ("{name}: solo se aceptan archivos .csv, .tsv, .txt o .xlsx",
                 "{name}: only .csv, .tsv, .txt or .xlsx files are taken"),
    "bad_name": ("{name}: el nombre del archivo no es válido", "{name}: the file's name is not valid"),
    "staff_cannot_send": ("Solo las cuentas del país envían sus archivos.",
                          "Only the country's own accounts send its files."),
    "calendar": ("Calendario de envíos (Q01)", "Reporting calendar (Q01)"),
    "calendar_help": ("Cada mes vence el día {day} del mes siguiente. Según la última publicación.",
                      "Each month is due by day {day} of the next month. As last published."),
    "overview_help": ("Los últimos doce meses de cada país miembro (Q01), según la última publicación; "
                      "cada país tiene su propio día de vencimiento.",
                      "Each member country's last twelve months (Q01), as last published; "
                      "each country has its own due day."),
    "next_due_short": ("Próximo vencimiento", "Next due"),
    "monthly_reports": ("Informes mensuales a la PPT", "Monthly reports to the PPT"),
    "no_reports": ("Aún no hay informes: cada corrida escribe el del último mes con datos aceptados.",
                   "No report yet: each run writes the one of the latest month with accepted data."),
    "next_due": ("Próximo vencimiento: {period}, a más tardar el {due}.", "Next due: {period}, by {due}."),
    **{f"cal_{state}": words for state, words in Q01_STATE_WORDS.items()},
    "year": ("Año", "Year"),
    "verdict": ("Resultado", "Verdict"),
    "rule": ("Regla", "Rule"),
    "severity": ("Gravedad", "Severity"),
    "row": ("Fila", "Row"),
    "column": ("Columna", "Column"),
    "value": ("Valor", "Value"),
    "message": ("Mensaje", "Message"),
    "error": ("error", "error"),
    "warning": ("advertencia", "warning"),
    "download_json": ("Descargar acuse (JSON)", "Download receipt (JSON)"),
    "download_csv": ("Descargar problemas (CSV)", "Download problems (CSV)"),
    "data_docs": ("Validación regla por regla (Data Docs)", "Validation rule by rule (Data Docs)"),
    "back": ("Volver", "Back"),
    "no_problems": ("Sin problemas.", "No problems."),
    "notes": ("Notas", "Notes"),
    "periods": ("Periodos", "Periods"),
    "sort_by": ("Ordenar por", "Sort by"),
    "duplicate_of": ("Idéntico al envío {id} ({name}); no se cargó de nuevo.",
                     "Identical to submission {id} ({name}); nothing was loaded again."),
    "not_found": ("No encontrado.", "Not found."),
    "forbidden_form": ("El formulario caducó o no es de esta sesión; vuelva a intentarlo.",
                       "The form expired or is not from this session; please try again."),
    "check_result": ("Revisión previa de {name}: {verdict}", "Dry run of {name}: {verdict}"),
    "check_unavailable": ("La revisión previa no está disponible: {reason}", "The dry run is not available: {reason}"),
}


def t(key: str, language: str, **values: object) -> str:
    spanish, english = TEXTS[key]
    text = english if language == "en" else spanish
    return text.format(**values) if values else text


def status_text(status: str, language: str) -> str:
    return t(f"st_{status}", language) if f"st_{status}" in TEXTS else status
