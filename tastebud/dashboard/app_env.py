"""The environment variables that tell the dashboard's Streamlit script where its data is
(a module of its own: ``launch`` sets them without importing streamlit)."""

URL_VARIABLE = "TASTEBUD_DASHBOARD_URL"
KEY_VARIABLE = "TASTEBUD_DASHBOARD_KEY"
