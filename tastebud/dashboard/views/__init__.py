"""The dashboard's pages: each module's ``render(source)`` draws one page from a
``DataSource``; ``app.py`` puts them in the navigation."""
