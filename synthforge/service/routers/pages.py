def mount(app):
    pass
